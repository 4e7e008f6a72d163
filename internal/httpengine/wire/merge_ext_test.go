package wire_test

import (
	"reflect"
	"testing"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
)

func TestMergeHeaders(t *testing.T) {
	raw := []wire.Header{
		{"Content-Type", "text/html"},
		{"Set-Cookie", "a=1"},
		{"X-Custom", "one"},
		{"content-type", "text/plain"},
		{"SET-COOKIE", "b=2"},
		{"Cookie", "c=3"},
		{"x-custom", "two"},
		{"cookie", "d=4"},
		{"Authorization", "first"},
		{"Authorization", "second"},
		{"Set-Cookie", "e=5"},
		{"Server", "s"},
	}
	tests := []struct {
		name string
		join bool
		want []wire.MergedHeader
	}{
		{name: "node default", join: false, want: []wire.MergedHeader{
			{Name: "content-type", Values: []string{"text/html"}, Joined: "text/html"},
			{Name: "set-cookie", Values: []string{"a=1", "b=2", "e=5"}, Joined: "a=1, b=2, e=5"},
			{Name: "x-custom", Values: []string{"one", "two"}, Joined: "one, two"},
			{Name: "cookie", Values: []string{"c=3", "d=4"}, Joined: "c=3; d=4"},
			{Name: "authorization", Values: []string{"first"}, Joined: "first"},
			{Name: "server", Values: []string{"s"}, Joined: "s"},
		}},
		{name: "joinDuplicateHeaders", join: true, want: []wire.MergedHeader{
			{Name: "content-type", Values: []string{"text/html", "text/plain"}, Joined: "text/html, text/plain"},
			{Name: "set-cookie", Values: []string{"a=1", "b=2", "e=5"}, Joined: "a=1, b=2, e=5"},
			{Name: "x-custom", Values: []string{"one", "two"}, Joined: "one, two"},
			{Name: "cookie", Values: []string{"c=3", "d=4"}, Joined: "c=3; d=4"},
			{Name: "authorization", Values: []string{"first", "second"}, Joined: "first, second"},
			{Name: "server", Values: []string{"s"}, Joined: "s"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := wire.MergeHeaders(raw, tt.join)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, tt.want)
			}
			if !got[1].IsArray() || got[0].IsArray() {
				t.Fatal("IsArray")
			}
		})
	}
}

func TestMergeHeadersDiscardList(t *testing.T) {
	discard := []string{"age", "authorization", "content-length", "content-type", "etag", "expires", "from", "host",
		"if-modified-since", "if-unmodified-since", "last-modified", "location", "max-forwards",
		"proxy-authorization", "referer", "retry-after", "server", "user-agent"}
	for _, name := range discard {
		t.Run(name, func(t *testing.T) {
			got := wire.MergeHeaders([]wire.Header{{name, "1"}, {name, "2"}}, false)
			if len(got) != 1 || got[0].Joined != "1" || len(got[0].Values) != 1 {
				t.Fatalf("%+v", got)
			}
		})
	}
	t.Run("others joined", func(t *testing.T) {
		got := wire.MergeHeaders([]wire.Header{{"Vary", "a"}, {"VARY", "b"}, {"X-Weird-Name", "c"}}, false)
		if len(got) != 2 || got[0].Joined != "a, b" || got[1].Name != "x-weird-name" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("many headers use the index", func(t *testing.T) {
		var raw []wire.Header
		for i := 0; i < 40; i++ {
			raw = append(raw, wire.Header{Name: "X-" + string(rune('a'+i%20)), Value: "v"})
		}
		got := wire.MergeHeaders(raw, false)
		if len(got) != 20 || got[0].Joined != "v, v" {
			t.Fatalf("%d entries, first %+v", len(got), got[0])
		}
	})
	if wire.MergeHeaders(nil, false) != nil {
		t.Fatal("nil in, nil out")
	}
}

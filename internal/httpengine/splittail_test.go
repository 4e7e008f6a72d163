package httpengine

import (
	"bytes"
	"net"
	"testing"
)

func TestSplitTail(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bufs       []string
		n          int
		head, tail string
		headBufs   int
	}{
		{name: "short", bufs: []string{"ab", "cd"}, n: 4, head: "abcd", tail: ""},
		{name: "cut inside", bufs: []string{"abc", "def"}, n: 4, head: "ab", tail: "cdef", headBufs: 1},
		{name: "cut at a boundary", bufs: []string{"abc", "def"}, n: 3, head: "abc", tail: "def", headBufs: 1},
		{name: "cut in the last", bufs: []string{"ab", "cdef"}, n: 2, head: "abcd", tail: "ef", headBufs: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bufs net.Buffers
			for _, s := range tc.bufs {
				bufs = append(bufs, []byte(s))
			}
			head, tail := splitTail(bufs, tc.n)
			if got := string(bytes.Join(head, nil)); got != tc.head {
				t.Errorf("head %q, want %q", got, tc.head)
			}
			if got := string(bytes.Join(tail, nil)); got != tc.tail {
				t.Errorf("tail %q, want %q", got, tc.tail)
			}
			if tc.tail != "" && len(head) != tc.headBufs {
				t.Errorf("head has %d buffers, want %d (no empty ones)", len(head), tc.headBufs)
			}
		})
	}
}

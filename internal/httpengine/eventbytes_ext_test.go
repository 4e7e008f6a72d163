package httpengine_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestDataEventBytes checks that each 'data' event carries the response
// body received so far, itself included (Event.Bytes), and that 'end'
// carries the whole: a consumer may judge any data event alone, whichever
// events before it it skipped.
func TestDataEventBytes(t *testing.T) {
	testutil.CheckLeaks(t)
	sizes := []int{3, 1000, 17, 4096}
	var resp strings.Builder
	resp.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	for _, n := range sizes {
		resp.WriteString(strconv.FormatInt(int64(n), 16) + "\r\n" + strings.Repeat("x", n) + "\r\n")
	}
	resp.WriteString("0\r\n\r\n")
	up := testutil.NewUpstream(t, serveOnce(resp.String()))
	a := newAgent(t, agentpool.DefaultOptions(), agentpool.Deps{})
	c, err := httpengine.Request(a, false, httpengine.Options{Host: "127.0.0.1", Port: up.Port}, 0)
	if err != nil {
		t.Fatal(err)
	}
	end(t, c)
	var total uint64
	for _, ev := range events(t, c) {
		switch ev.Kind {
		case httpengine.EventData:
			total += uint64(len(ev.Data))
			if ev.Bytes != total {
				t.Fatalf("data event %d: Bytes %d, want the %d bytes received so far", ev.Seq, ev.Bytes, total)
			}
		case httpengine.EventEnd:
			if ev.Bytes != total {
				t.Fatalf("end: Bytes %d, want %d", ev.Bytes, total)
			}
		case httpengine.EventError:
			t.Fatalf("error event: %v", ev.Err)
		}
	}
	want := uint64(0)
	for _, n := range sizes {
		want += uint64(n)
	}
	if total != want {
		t.Fatalf("%d body bytes, want %d", total, want)
	}
}

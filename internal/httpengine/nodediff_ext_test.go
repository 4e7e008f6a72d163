package httpengine_test

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestNodeDifferential points node:http (testdata/nodediff.js) and the
// engine at the same scripted upstream and compares the events, codes
// included. It covers the cases where Node 20 and DESIGN.md agree; the
// cases where they differ are pinned by TestEventOrder instead. Skipped
// when node is not installed.
func TestNodeDifferential(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: differential test skipped")
	}
	if testing.Short() {
		t.Skip("runs node once per case")
	}
	cases := []struct{ name, response string }{
		{"success", okHello},
		{"close before response", ""},
		{"close after response", partial},
		{"informational", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + okHello},
		{"chunked with trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"},
		{"CL then TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"TE then CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"},
		{"LF only", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
		{"bad status", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"bad version", "HTTP/2.5 200 OK\r\n\r\n"},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n"},
		{"header overflow", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 17000) + "\r\n\r\n"},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"},
		{"HEAD-less 204", "HTTP/1.1 204 No Content\r\n\r\n"},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nstream until close"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			u := testutil.NewUpstream(t, func(c netConn) { answerAndClose(c, tc.response) })

			out, err := exec.Command(node, "testdata/nodediff.js", strconv.Itoa(u.Port)).Output()
			if err != nil {
				t.Fatalf("node: %v", err)
			}
			var want []string
			if err := json.Unmarshal(out, &want); err != nil {
				t.Fatalf("node output %q: %v", out, err)
			}

			a := newAgent(t, agentpool.DefaultOptions(), agentpool.Deps{})
			c, err := httpengine.Request(a, false, httpengine.Options{Host: "127.0.0.1", Port: u.Port}, 0)
			if err != nil {
				t.Fatal(err)
			}
			end(t, c)
			var got []string
			for _, ev := range events(t, c) {
				s := ev.String()
				if s == "res:data" && len(got) > 0 && got[len(got)-1] == "res:data" {
					continue // chunk boundaries are not part of the contract
				}
				got = append(got, s)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("engine and node differ\nengine: %s\n  node: %s", strings.Join(got, " "), strings.Join(want, " "))
			}
		})
	}
}

package rpc_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestProxyLoginOverGRPC: an agent with proxy_env sends through Debian's
// squid; its 407 arrives as a login event on an Exchange, the login op
// answers it, and the response follows. Fetch cannot answer a login and
// says so at once.
func TestProxyLoginOverGRPC(t *testing.T) {
	testutil.CheckLeaks(t)
	sq := testutil.StartSquidProxy(t, testutil.SquidOptions{BasicAuth: map[string]string{"carol": "pw"}})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "through the proxy")
	}))
	t.Cleanup(up.Close)
	gw := startGateway(t, rpc.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ka := true
	if _, err := gw.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "proxied",
		Options: &pb.AgentOptions{KeepAlive: &ka, ProxyEnv: map[string]string{"HTTP_PROXY": sq.URL}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = gw.agents.DestroyAgent(context.Background(), &pb.DestroyAgentRequest{Name: "proxied"})
	})

	t.Run("exchange answers the login", func(t *testing.T) {
		stream, send := openExchange(t, ctx, gw)
		send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Url: up.URL + "/", Agent: "proxied"}}})
		send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}})
		var body []byte
		var login *pb.LoginEvent
		for {
			msg, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			switch k := msg.GetEvent().GetKind().(type) {
			case *pb.Event_Login:
				login = k.Login
				send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Login{Login: &pb.LoginOp{Username: "carol", Password: "pw"}}})
				_ = stream.CloseSend()
			case *pb.Event_Data:
				body = append(body, k.Data.GetChunk()...)
			case *pb.Event_Error:
				t.Fatalf("error event %v", k.Error)
			}
			if r := msg.GetOpRefused(); r != nil {
				t.Fatalf("op refused: %v", r)
			}
		}
		if login == nil || !login.GetIsProxy() || login.GetScheme() != "basic" || int(login.GetPort()) != sq.Port {
			t.Fatalf("login event %v", login)
		}
		if string(body) != "through the proxy" {
			t.Fatalf("body %q", body)
		}
	})
	t.Run("fetch cannot answer a login", func(t *testing.T) {
		_, err := gw.req.Fetch(ctx, &pb.FetchRequest{Url: up.URL + "/", Agent: "proxied"})
		if status.Code(err) != codes.Unauthenticated || reasonOf(err) != "ERR_GATEWAY_LOGIN_CANCELLED" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("credentials in the proxy URL need no login", func(t *testing.T) {
		if _, err := gw.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "proxied-creds",
			Options: &pb.AgentOptions{ProxyEnv: map[string]string{"http_proxy": "http://carol:pw@127.0.0.1:" + strconv.Itoa(sq.Port)}}}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_, _ = gw.agents.DestroyAgent(context.Background(), &pb.DestroyAgentRequest{Name: "proxied-creds"})
		}()
		res, err := gw.req.Fetch(ctx, &pb.FetchRequest{Url: up.URL + "/", Agent: "proxied-creds"})
		if err != nil || string(res.GetBody()) != "through the proxy" {
			t.Fatalf("fetch: %v %q", err, res.GetBody())
		}
		if s := res.GetSocket(); !s.GetViaProxy() || !strings.HasPrefix(s.GetProxy(), "http://") || strings.Contains(s.GetProxy(), "pw") {
			t.Fatalf("socket does not show its proxy (without credentials): %v", s)
		}
		// A NO_PROXY match goes direct and names the rule.
		if _, err := gw.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "bypass",
			Options: &pb.AgentOptions{ProxyEnv: map[string]string{"HTTP_PROXY": sq.URL, "NO_PROXY": "localhost,127.0.0.0-127.255.255.255"}}}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_, _ = gw.agents.DestroyAgent(context.Background(), &pb.DestroyAgentRequest{Name: "bypass"})
		}()
		res, err = gw.req.Fetch(ctx, &pb.FetchRequest{Url: up.URL + "/", Agent: "bypass"})
		if err != nil {
			t.Fatal(err)
		}
		if s := res.GetSocket(); s.GetViaProxy() || s.GetProxyRule() != "127.0.0.0-127.255.255.255" {
			t.Fatalf("bypassed socket: %v", s)
		}
		got, err := gw.agents.GetAgent(ctx, &pb.GetAgentRequest{Name: "proxied-creds"})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range got.GetAgent().GetOptions().GetProxyEnv() {
			if strings.Contains(v, ":pw") {
				t.Fatalf("GetAgent shows the proxy password: %v", got.GetAgent().GetOptions().GetProxyEnv())
			}
		}
	})
}

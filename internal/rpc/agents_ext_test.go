package rpc_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// keepAliveServer answers every request on a connection with okHello.
func keepAliveServer(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		if _, _, err := testutil.ReadRequest(br); err != nil {
			return
		}
		if _, err := io.WriteString(c, okHello); err != nil {
			return
		}
	}
}

// TestAgentSockets shows a socket moving between in use and free through
// ListSockets, reused by a second request, and the WatchAgent events in
// order; then the agent RPCs' refusals.
func TestAgentSockets(t *testing.T) {
	testutil.CheckLeaks(t)
	up := testutil.NewUpstream(t, keepAliveServer)
	g := startGateway(t, rpc.Options{})
	ctx := testCtx(t)

	ag, err := g.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "ka", Options: &pb.AgentOptions{KeepAlive: ptr(true), Scheduling: pb.Scheduling_SCHEDULING_FIFO}})
	if err != nil {
		t.Fatal(err)
	}
	if o := ag.GetAgent().GetOptions(); !o.GetKeepAlive() || o.GetScheduling() != pb.Scheduling_SCHEDULING_FIFO || o.GetMaxFreeSockets() != 256 {
		t.Fatalf("options: %v", o)
	}
	watch, err := g.agents.WatchAgent(ctx, &pb.WatchAgentRequest{Agent: "ka"})
	if err != nil {
		t.Fatal(err)
	}
	// The headers arrive once the server subscribed: from then on no
	// event can be missed.
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}
	name, err := g.agents.GetName(ctx, &pb.GetNameRequest{Agent: "ka", Options: &pb.NameOptions{Host: "127.0.0.1", Port: int32(up.Port)}})
	if err != nil || name.GetName() != "127.0.0.1:"+strconv.Itoa(up.Port)+":" {
		t.Fatalf("GetName: %v %v", name, err)
	}
	list := func() (active, free []*pb.SocketInfo) {
		t.Helper()
		r, err := g.agents.ListSockets(ctx, &pb.ListSocketsRequest{Agent: "ka", Name: name.GetName()})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range r.GetNames() {
			active = append(active, n.GetSockets()...)
			free = append(free, n.GetFreeSockets()...)
		}
		return active, free
	}

	o := &pb.RequestOptions{Url: "http://127.0.0.1:" + strconv.Itoa(up.Port) + "/", Agent: "ka"}
	first := request(t, g, o)
	s := subscribe(t, g, first.GetRequestId(), 0)
	s.until("req:socket")
	if active, free := list(); len(active) != 1 || len(free) != 0 {
		t.Fatalf("in use: active %v free %v", active, free)
	}
	end(t, g, first.GetRequestId(), nil)
	s.rest()
	active, free := list()
	if len(active) != 0 || len(free) != 1 || free[0].GetState() != pb.SocketState_SOCKET_STATE_FREE || free[0].GetRemotePort() != int32(up.Port) {
		t.Fatalf("after the response: active %v free %v", active, free)
	}
	sockID := free[0].GetId()

	second := request(t, g, o)
	s2 := subscribe(t, g, second.GetRequestId(), 0)
	sock := s2.until("req:socket").GetSocket()
	if !sock.GetReused() || sock.GetSocket().GetId() != sockID || sock.GetAgent() != "ka" {
		t.Fatalf("second socket event: %v", sock)
	}
	if active, free := list(); len(active) != 1 || len(free) != 0 || active[0].GetId() != sockID {
		t.Fatalf("reused: active %v free %v", active, free)
	}
	end(t, g, second.GetRequestId(), nil)
	evs := s2.rest()
	if !evs[2].GetResponse().GetReusedSocket() {
		t.Fatalf("response event not reused: %v", evs[2])
	}
	if a, err := g.agents.GetAgent(ctx, &pb.GetAgentRequest{Name: "ka"}); err != nil || a.GetAgent().GetFreeSockets() != 1 || a.GetAgent().GetActiveSockets() != 0 {
		t.Fatalf("GetAgent: %v %v", a, err)
	}

	if _, err := g.agents.DestroyAgent(ctx, &pb.DestroyAgentRequest{Name: "ka"}); err != nil {
		t.Fatal(err)
	}
	var types []string
	var last uint64
	for {
		r, err := watch.Recv()
		if errors.Is(err, io.EOF) {
			break // the agent was destroyed
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.GetEvent().GetSeq() != last+1 {
			t.Fatalf("seq %d after %d", r.GetEvent().GetSeq(), last)
		}
		last = r.GetEvent().GetSeq()
		types = append(types, strings.TrimPrefix(r.GetEvent().GetType().String(), "AGENT_EVENT_TYPE_"))
	}
	want := "SOCKET_CREATED SOCKET_ASSIGNED SOCKET_FREED SOCKET_REUSED SOCKET_ASSIGNED SOCKET_FREED SOCKET_CLOSED"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("agent events\n got: %s\nwant: %s", got, want)
	}

	all, err := g.agents.ListAgents(ctx, &pb.ListAgentsRequest{})
	if err != nil || len(all.GetAgents()) != 1 || all.GetAgents()[0].GetName() != "global" || !all.GetAgents()[0].GetOptions().GetKeepAlive() ||
		all.GetAgents()[0].GetOptions().GetTimeout().AsDuration().Seconds() != 5 {
		t.Fatalf("ListAgents: %v %v", all, err)
	}
	_, err = g.agents.DestroyAgent(ctx, &pb.DestroyAgentRequest{Name: "global"})
	wantStatus(t, err, codes.FailedPrecondition, "ERR_GATEWAY_GLOBAL_AGENT")
	_, err = g.agents.GetAgent(ctx, &pb.GetAgentRequest{Name: "ka"})
	wantStatus(t, err, codes.NotFound, "ERR_GATEWAY_AGENT_NOT_FOUND")
	_, err = g.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "global"})
	wantStatus(t, err, codes.AlreadyExists, "ERR_GATEWAY_AGENT_EXISTS")
	_, err = g.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "bad name"})
	wantStatus(t, err, codes.InvalidArgument, "ERR_GATEWAY_INVALID_ARGUMENT")
	_, err = g.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "proxied", Options: &pb.AgentOptions{ProxyEnv: map[string]string{"HTTP_PROXY": "ftp://127.0.0.1:1"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a proxy URL with a bad scheme: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

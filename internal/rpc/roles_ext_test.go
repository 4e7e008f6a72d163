package rpc_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/auth"
	"github.com/httpgateway/httpgateway/internal/egress"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

const tokenC = "token-c-0123456789abcdef"

// startTokenGateway is startGateway behind the auth interceptors with the
// given tokens (roles included).
func startTokenGateway(t *testing.T, o rpc.Options, to auth.TokensOptions) *gateway {
	t.Helper()
	to.Logger = slog.New(slog.DiscardHandler)
	tokens, err := auth.NewTokens(to)
	if err != nil {
		t.Fatal(err)
	}
	authn := auth.New(auth.Options{Tokens: tokens})
	return startGateway(t, o, grpc.ChainUnaryInterceptor(authn.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(authn.StreamServerInterceptor()))
}

// decisionLog records the egress decisions of a policy (OnDecision) and
// its log records.
type decisionLog struct {
	mu   sync.Mutex // guards the fields below
	list []egress.Decision
	logs bytes.Buffer
}

func (d *decisionLog) add(_ context.Context, x egress.Decision) {
	d.mu.Lock()
	d.list = append(d.list, x)
	d.mu.Unlock()
}

func (d *decisionLog) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.Write(p)
}

// find returns the first decision with that rule.
func (d *decisionLog) find(rule string) (egress.Decision, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.list {
		if x.Rule == rule {
			return x, true
		}
	}
	return egress.Decision{}, false
}

func (d *decisionLog) text() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logs.String()
}

// rolePolicies compiles base and its roles, and returns the
// rpc.Options.AgentDepsFor that gives each role's agents its policy, the
// way cmd/gateway does. Every decision goes to the returned log. next
// resolves names (nil: none are resolved in these tests).
func rolePolicies(t *testing.T, base egress.Options, next egress.NetIPResolver, roles ...egress.Role) (func(string) agentpool.Deps, *decisionLog) {
	t.Helper()
	dl := &decisionLog{}
	base.OnDecision = dl.add
	base.Logger = slog.New(slog.NewTextHandler(dl, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := egress.New(base)
	if err != nil {
		t.Fatal(err)
	}
	byRole := map[string]*egress.Policy{"": p}
	for _, r := range roles {
		if byRole[r.Name], err = p.ForRole(r); err != nil {
			t.Fatal(err)
		}
	}
	if next == nil {
		next = noResolver{}
	}
	return func(role string) agentpool.Deps {
		rp := byRole[role]
		if rp == nil {
			rp = p
		}
		return agentpool.Deps{
			Resolver:        egress.NewResolver(next),
			Check:           rp.Check,
			CheckSocketPath: rp.CheckSocketPath,
			CheckName: func(ctx context.Context, host string, port uint16) error {
				return rp.CheckName(ctx, host, port, next)
			},
		}
	}, dl
}

// noResolver resolves nothing: the tests that use it name IP literals.
type noResolver struct{}

func (noResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// metadataOf returns the ErrorInfo metadata of a status error.
func metadataOf(err error) map[string]string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetMetadata()
		}
	}
	return nil
}

// TestRoleEgressPolicies: each caller's requests dial under its role's
// policy, through `global`, a named agent and a one-time agent alike: a
// role limited to its allow list cannot reach what the base policy opens,
// a caller without a role can, and a report-only role's denial is logged
// while the request goes through.
func TestRoleEgressPolicies(t *testing.T) {
	testutil.CheckLeaks(t)
	upA := testutil.NewUpstream(t, keepAliveServer)
	upB := testutil.NewUpstream(t, keepAliveServer)
	a, b := "127.0.0.1:"+strconv.Itoa(upA.Port), "127.0.0.1:"+strconv.Itoa(upB.Port)
	depsFor, dl := rolePolicies(t, egress.Options{Allow: []string{a, b}}, nil,
		egress.Role{Name: "ci", Allow: []string{a}, AllowListOnly: true},
		egress.Role{Name: "audit", Deny: []string{b}, Mode: egress.ReportOnly})
	g := startTokenGateway(t, rpc.Options{AgentDepsFor: depsFor},
		auth.TokensOptions{Inline: []string{tokenA + " alice ci", tokenB + " bob", tokenC + " carol audit"}})
	ctx := testCtx(t)
	alice, bob, carol := as(ctx, tokenA), as(ctx, tokenB), as(ctx, tokenC)
	if _, err := g.agents.CreateAgent(alice, &pb.CreateAgentRequest{Name: "pool"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		ctx      context.Context
		req      *pb.FetchRequest
		wantRule string // "" = the fetch succeeds
		wantRole string
	}{
		{name: "ci reaches its allow list", ctx: alice, req: &pb.FetchRequest{Url: "http://" + a + "/"}},
		{name: "ci is limited to its allow list", ctx: alice, req: &pb.FetchRequest{Url: "http://" + b + "/"},
			wantRule: "default-deny:loopback 127.0.0.0/8", wantRole: "ci"},
		{name: "ci through its named agent", ctx: alice, req: &pb.FetchRequest{Url: "http://" + b + "/", Agent: "pool"},
			wantRule: "default-deny:loopback 127.0.0.0/8", wantRole: "ci"},
		{name: "ci through a one-time agent", ctx: alice,
			req:      &pb.FetchRequest{Url: "http://" + b + "/", Options: &pb.RequestOptions{OneTimeAgent: &pb.AgentOptions{}}},
			wantRule: "default-deny:loopback 127.0.0.0/8", wantRole: "ci"},
		{name: "no role: the base policy", ctx: bob, req: &pb.FetchRequest{Url: "http://" + b + "/"}},
		{name: "report-only role goes through", ctx: carol, req: &pb.FetchRequest{Url: "http://" + b + "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := g.req.Fetch(tt.ctx, tt.req)
			if tt.wantRule == "" {
				if err != nil || string(res.GetBody()) != "hello" {
					t.Fatalf("fetch: %v %q", err, res.GetBody())
				}
				return
			}
			wantStatus(t, err, codes.PermissionDenied, "ERR_GATEWAY_EGRESS_DENIED")
			if m := metadataOf(err); m["rule"] != tt.wantRule || m["role"] != tt.wantRole {
				t.Fatalf("ErrorInfo metadata %v, want rule %q role %q", m, tt.wantRule, tt.wantRole)
			}
		})
	}

	// Report-only: the denial was decided, logged and reported, and the
	// dial went ahead (the fetch above succeeded).
	rule := "role:audit:deny:" + b
	d, ok := dl.find(rule)
	if !ok || d.Allowed || d.Mode != egress.ReportOnly || d.Role != "audit" {
		t.Fatalf("report-only decision %+v (found %t), want a denial by %s in report-only mode", d, ok, rule)
	}
	logs := dl.text()
	if !strings.Contains(logs, `msg="egress would be denied (report-only)"`) || !strings.Contains(logs, "rule="+rule) ||
		!strings.Contains(logs, "role=audit") || !strings.Contains(logs, "level=WARN") {
		t.Fatalf("report-only denial not logged at warn with its rule and role:\n%s", logs)
	}
}

// TestGlobalAgentPerCaller: `global` is each identity's own: caller b does
// not see a's sockets in it, its WatchAgent sees only its own events, and
// metrics (AgentCreated) see every caller's `global`.
func TestGlobalAgentPerCaller(t *testing.T) {
	testutil.CheckLeaks(t)
	// a and b fetch from upstreams of their own, so that their sockets
	// are told apart by pool name (socket ids count per agent).
	upA, upB := testutil.NewUpstream(t, keepAliveServer), testutil.NewUpstream(t, keepAliveServer)
	var (
		mu      sync.Mutex
		created []*agentpool.Agent
	)
	g := startAuthGateway(t, rpc.Options{AgentCreated: func(a *agentpool.Agent) {
		mu.Lock()
		created = append(created, a)
		mu.Unlock()
	}})
	ctx := testCtx(t)
	a, b := as(ctx, tokenA), as(ctx, tokenB)
	urlA, urlB := "http://127.0.0.1:"+strconv.Itoa(upA.Port)+"/", "http://127.0.0.1:"+strconv.Itoa(upB.Port)+"/"

	watchB, err := g.agents.WatchAgent(b, &pb.WatchAgentRequest{Agent: "global"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watchB.Header(); err != nil { // b's subscription is live
		t.Fatal(err)
	}
	if res, err := g.req.Fetch(a, &pb.FetchRequest{Url: urlA}); err != nil || string(res.GetBody()) != "hello" {
		t.Fatalf("a's fetch: %v", err)
	}
	sockets := func(ctx context.Context) *pb.ListSocketsResponse {
		t.Helper()
		r, err := g.agents.ListSockets(ctx, &pb.ListSocketsRequest{Agent: "global"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	free := func(ctx context.Context) int {
		t.Helper()
		n := 0
		for _, ns := range sockets(ctx).GetNames() {
			n += len(ns.GetFreeSockets()) + len(ns.GetSockets())
		}
		return n
	}
	if n := free(a); n != 1 {
		t.Fatalf("a's global holds %d sockets, want its one keep-alive socket", n)
	}
	if n := free(b); n != 0 {
		t.Fatalf("b sees %d sockets in its global: a's socket leaked into b's view", n)
	}
	if ga, err := g.agents.GetAgent(b, &pb.GetAgentRequest{Name: "global"}); err != nil || ga.GetAgent().GetFreeSockets() != 0 {
		t.Fatalf("b's GetAgent(global): %v %v", ga, err)
	}

	// b's own request: the first event b's watch sees is the creation of
	// b's socket (its pool and id as b's ListSockets shows them), nothing
	// of a's socket (a's pool, made while b watched) came before it.
	if _, err := g.req.Fetch(b, &pb.FetchRequest{Url: urlB}); err != nil {
		t.Fatalf("b's fetch: %v", err)
	}
	pools := sockets(b).GetNames()
	if len(pools) != 1 || len(pools[0].GetFreeSockets()) != 1 {
		t.Fatalf("b's global after its request: %v; want its one keep-alive socket", pools)
	}
	own := pools[0].GetFreeSockets()[0]
	if own.GetName() != pools[0].GetName() || !strings.Contains(own.GetName(), ":"+strconv.Itoa(upB.Port)+":") {
		t.Fatalf("b's socket %v is not of b's upstream", own)
	}
	ev, err := watchB.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if e := ev.GetEvent(); e.GetType() != pb.AgentEventType_AGENT_EVENT_TYPE_SOCKET_CREATED || e.GetName() != own.GetName() || e.GetSocketId() != own.GetId() || e.GetSeq() != 1 {
		t.Fatalf("b's first global event %v; want the creation of its own socket %s #%d", e, own.GetName(), own.GetId())
	}
	if n := free(a); n != 1 {
		t.Fatalf("a's global holds %d sockets after b's request, want 1", n)
	}

	// Every global is an agent of its own, and metrics saw each: the
	// anonymous one (New), a's and b's.
	mu.Lock()
	n := len(created)
	mu.Unlock()
	if n != 3 || len(g.svc.Agents()) != 3 {
		t.Fatalf("AgentCreated saw %d agents, Agents lists %d; want 3 globals", n, len(g.svc.Agents()))
	}
	for _, ag := range g.svc.Agents() {
		if ag.Name() != "global" {
			t.Errorf("agent %q listed", ag.Name())
		}
	}
}

// TestRoleChangeRetiresAgents: when the tokens file gives an identity a
// new role, its next call retires what it created under the old role (its
// `global` and named agents are destroyed, their sockets closed), and its
// requests dial under the new role's policy from then on.
func TestRoleChangeRetiresAgents(t *testing.T) {
	testutil.CheckLeaks(t)
	up := testutil.NewUpstream(t, keepAliveServer)
	target := "127.0.0.1:" + strconv.Itoa(up.Port)
	url := "http://" + target + "/"
	depsFor, _ := rolePolicies(t, egress.Options{}, nil,
		egress.Role{Name: "dev", Allow: []string{target}},
		egress.Role{Name: "locked", AllowListOnly: true})
	file, writeTokens := tokensFile(t)
	writeTokens(tokenA + " alice dev")
	var (
		mu      sync.Mutex
		created []*agentpool.Agent
	)
	g := startTokenGateway(t, rpc.Options{AgentDepsFor: depsFor, AgentCreated: func(a *agentpool.Agent) {
		mu.Lock()
		created = append(created, a)
		mu.Unlock()
	}}, auth.TokensOptions{File: file, CheckInterval: -1})
	alice := as(testCtx(t), tokenA)

	if _, err := g.agents.CreateAgent(alice, &pb.CreateAgentRequest{Name: "pool"}); err != nil {
		t.Fatal(err)
	}
	for _, agent := range []string{"", "pool"} {
		if _, err := g.req.Fetch(alice, &pb.FetchRequest{Url: url, Agent: agent}); err != nil {
			t.Fatalf("fetch as dev through %q: %v", agent, err)
		}
	}
	mu.Lock()
	old := append([]*agentpool.Agent(nil), created...)
	mu.Unlock()

	// The operator moves alice to a role that may go nowhere. (The new
	// line differs in size, so the reload cannot miss it.)
	writeTokens(tokenA + " alice locked")
	_, err := g.req.Fetch(alice, &pb.FetchRequest{Url: url})
	wantStatus(t, err, codes.PermissionDenied, "ERR_GATEWAY_EGRESS_DENIED")
	if m := metadataOf(err); m["role"] != "locked" || m["rule"] != "default-deny:loopback 127.0.0.0/8" {
		t.Fatalf("denial metadata %v, want the locked role's", m)
	}
	_, err = g.req.Fetch(alice, &pb.FetchRequest{Url: url, Agent: "pool"})
	wantStatus(t, err, codes.NotFound, "ERR_GATEWAY_AGENT_NOT_FOUND")
	list, err := g.agents.ListAgents(alice, &pb.ListAgentsRequest{})
	if err != nil || len(list.GetAgents()) != 1 || list.GetAgents()[0].GetName() != "global" || list.GetAgents()[0].GetFreeSockets() != 0 {
		t.Fatalf("ListAgents after the role change: %v %v; want only a fresh global", list, err)
	}
	for _, a := range old[1:] { // old[0] is the anonymous global of New
		if !a.Snapshot().Destroyed {
			t.Errorf("agent %q of the old role was not destroyed", a.Name())
		}
	}
}

// TestRoleChangeStopsHandleRequests: a request an identity created under
// one role (here on a one-time agent, which no agent retirement reaches)
// is destroyed by that identity's next call on it after its role changed,
// so a deferred redirect cannot be followed under the old role's policy.
func TestRoleChangeStopsHandleRequests(t *testing.T) {
	testutil.CheckLeaks(t)
	rc := startRoleChange(t)
	g, alice, srv, writeTokens := rc.g, rc.alice, rc.srv, rc.writeTokens

	created, err := g.req.Request(alice, &pb.RequestRequest{Options: &pb.RequestOptions{Url: srv.URL + "/from",
		OneTimeAgent: &pb.AgentOptions{}, Redirect: pb.RedirectMode_REDIRECT_MODE_DEFERRED,
		RedirectDecisionTimeout: durationpb.New(time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetRequest().GetRequestId()
	if _, err := g.req.End(alice, &pb.EndRequest{RequestId: id}); err != nil {
		t.Fatal(err)
	}
	s := subscribeCtx(t, alice, g, id, 0)
	s.until("req:redirect")
	seen := len(s.got)
	writeTokens(tokenA + " alice locked  ") // another size: the reload cannot miss it
	_, err = g.req.FollowRedirect(alice, &pb.FollowRedirectRequest{RequestId: id})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("FollowRedirect after the role change: %v; want FAILED_PRECONDITION (no redirect pending: the request was destroyed)", err)
	}
	after := s.rest()[seen:]
	if got := names(after); !strings.Contains(got, "error(ERR_GATEWAY_ROLE_CHANGED)") || strings.Contains(got, "data") {
		t.Fatalf("events after the role change: %s; want the request destroyed with ERR_GATEWAY_ROLE_CHANGED, no data", got)
	}
	if n := rc.toCount.Load(); n != 0 {
		t.Fatalf("the redirect target was requested %d times after the role change", n)
	}
}

// tokensFile returns a tokens file path in a temporary folder and a
// function that replaces its content with one line.
func tokensFile(t *testing.T) (string, func(line string)) {
	file := filepath.Join(t.TempDir(), "tokens")
	return file, func(line string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRoleChangeStopsExchangeOps: an Exchange stream's caller is fixed
// when it opens, so its FollowRedirect op checks the owner's latest role
// (here seen by another call under the new role): a request created under
// the old role is destroyed instead of following.
func TestRoleChangeStopsExchangeOps(t *testing.T) {
	testutil.CheckLeaks(t)
	rc := startRoleChange(t)
	g, alice, srv, writeTokens := rc.g, rc.alice, rc.srv, rc.writeTokens

	st, send := openExchange(t, alice, g)
	send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Url: srv.URL + "/from",
		OneTimeAgent: &pb.AgentOptions{}, Redirect: pb.RedirectMode_REDIRECT_MODE_DEFERRED,
		RedirectDecisionTimeout: durationpb.New(time.Minute)}}})
	send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}})
	var sawRedirect bool
	var errCode string
	for {
		m, err := st.Recv()
		if err != nil {
			break // the stream ends after the request's close
		}
		switch k := m.GetEvent().GetKind().(type) {
		case *pb.Event_Redirect:
			sawRedirect = true
			writeTokens(tokenA + " alice locked  ")
			if _, err := g.agents.ListAgents(alice, &pb.ListAgentsRequest{}); err != nil { // a call under the new role
				t.Fatal(err)
			}
			send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_FollowRedirect{FollowRedirect: &pb.FollowRedirectOp{}}})
		case *pb.Event_Error:
			errCode = k.Error.GetError().GetCode()
		case *pb.Event_Data:
			t.Fatalf("data after the role change: %q", k.Data.GetChunk())
		}
	}
	if !sawRedirect || errCode != "ERR_GATEWAY_ROLE_CHANGED" {
		t.Fatalf("redirect seen %v, error code %q; want the request destroyed with ERR_GATEWAY_ROLE_CHANGED", sawRedirect, errCode)
	}
	if n := rc.toCount.Load(); n != 0 {
		t.Fatalf("the redirect target was requested %d times after the role change", n)
	}
}

// roleChange is the setup of the role-change tests: alice (role dev, which
// may reach srv) and an upstream whose /from redirects to /to, counting
// the requests for /to.
type roleChange struct {
	g           *gateway
	alice       context.Context
	srv         *httptest.Server
	writeTokens func(line string)
	toCount     *atomic.Int32
}

func startRoleChange(t *testing.T) *roleChange {
	rc := &roleChange{toCount: new(atomic.Int32)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/to" {
			rc.toCount.Add(1)
			_, _ = io.WriteString(w, "arrived")
			return
		}
		http.Redirect(w, r, "/to", http.StatusFound)
	}))
	t.Cleanup(rc.srv.Close)
	target := strings.TrimPrefix(rc.srv.URL, "http://")
	depsFor, _ := rolePolicies(t, egress.Options{}, nil,
		egress.Role{Name: "dev", Allow: []string{target}},
		egress.Role{Name: "locked", AllowListOnly: true})
	file, writeTokens := tokensFile(t)
	writeTokens(tokenA + " alice dev")
	rc.writeTokens = writeTokens
	rc.g = startTokenGateway(t, rpc.Options{AgentDepsFor: depsFor}, auth.TokensOptions{File: file, CheckInterval: -1})
	rc.alice = as(testCtx(t), tokenA)
	return rc
}

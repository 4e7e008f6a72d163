package rpc

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// This file converts between the proto messages and the engine's and the
// pool's types. Conversions from proto validate what the engine does not
// (features not implemented yet); the engine validates the rest with Node's
// codes.

// engineOptions converts RequestOptions to the engine's Options.
func engineOptions(o *pb.RequestOptions) (httpengine.Options, error) {
	if o == nil {
		o = &pb.RequestOptions{}
	}
	redirect := httpengine.RedirectManual
	switch o.GetRedirect() {
	case pb.RedirectMode_REDIRECT_MODE_UNSPECIFIED, pb.RedirectMode_REDIRECT_MODE_MANUAL:
	case pb.RedirectMode_REDIRECT_MODE_FOLLOW:
		redirect = httpengine.RedirectFollow
	case pb.RedirectMode_REDIRECT_MODE_ERROR:
		redirect = httpengine.RedirectError
	case pb.RedirectMode_REDIRECT_MODE_DEFERRED:
		redirect = httpengine.RedirectDeferred
	default:
		return httpengine.Options{}, badArgument("unknown redirect mode " + o.GetRedirect().String())
	}
	if o.GetMaxRedirects() < 0 {
		return httpengine.Options{}, badArgument("max_redirects must be >= 0")
	}
	eo := httpengine.Options{
		URL:                   o.GetUrl(),
		Method:                o.GetMethod(),
		Headers:               headersFromProto(o.GetHeaders()),
		Protocol:              o.GetProtocol(),
		Host:                  o.GetHost(),
		Hostname:              o.GetHostname(),
		Port:                  int(o.GetPort()),
		DefaultPort:           int(o.GetDefaultPort()),
		Path:                  o.GetPath(),
		Auth:                  o.GetAuth(),
		SocketPath:            o.GetSocketPath(),
		LocalAddress:          o.GetLocalAddress(),
		Family:                int(o.GetFamily()),
		Timeout:               o.GetTimeout().AsDuration(),
		MaxHeaderSize:         int(o.GetMaxHeaderSize()),
		MaxHeadersCount:       int(o.GetMaxHeadersCount()),
		InsecureHTTPParser:    o.GetInsecureHttpParser(),
		JoinDuplicateHeaders:  o.GetJoinDuplicateHeaders(),
		TLS:                   tlsFromProto(o.GetTls()),
		ChunkedEncoding:       o.GetChunkedEncoding(),
		ExpectContinueTimeout: o.GetExpectContinueTimeout().AsDuration(),

		LoginOnServerAuth:       o.GetLoginOnServerAuth(),
		Redirect:                redirect,
		MaxRedirects:            int(o.GetMaxRedirects()),
		RedirectDecisionTimeout: o.GetRedirectDecisionTimeout().AsDuration(),
	}
	if o.SetHost != nil {
		v := o.GetSetHost()
		eo.SetHost = &v
	}
	return eo, nil
}

func headersFromProto(hs []*pb.Header) []httpengine.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]httpengine.Header, len(hs))
	for i, h := range hs {
		out[i] = httpengine.Header{Name: h.GetName(), Value: h.GetValue()}
	}
	return out
}

func headersToProto(hs []wire.Header) []*pb.Header {
	if len(hs) == 0 {
		return nil
	}
	// One backing array for the messages: one allocation, not one per
	// header (this runs for every response head).
	msgs := make([]pb.Header, len(hs))
	out := make([]*pb.Header, len(hs))
	for i, h := range hs {
		m := &msgs[i]
		m.Name, m.Value = h.Name, h.Value
		out[i] = m
	}
	return out
}

func mergedToProto(ms []wire.MergedHeader) []*pb.HeaderValues {
	if len(ms) == 0 {
		return nil
	}
	msgs := make([]pb.HeaderValues, len(ms)) // one allocation, as headersToProto
	out := make([]*pb.HeaderValues, len(ms))
	for i, m := range ms {
		hv := &msgs[i]
		hv.Name, hv.Values = m.Name, m.Values
		if !m.IsArray() {
			hv.Joined = m.Joined
		}
		out[i] = hv
	}
	return out
}

func headerValuesToProto(hs []httpengine.HeaderValues) []*pb.HeaderValues {
	out := make([]*pb.HeaderValues, len(hs))
	for i, h := range hs {
		out[i] = &pb.HeaderValues{Name: h.Name, Values: h.Values, Joined: joinValues(h.Name, h.Values)}
	}
	return out
}

// joinValues is the single-string form of outgoing header values.
func joinValues(name string, vs []string) string {
	if name == "set-cookie" || len(vs) == 0 {
		return ""
	}
	sep := ", "
	if name == "cookie" {
		sep = "; "
	}
	s := vs[0]
	for _, v := range vs[1:] {
		s += sep + v
	}
	return s
}

// headToProto converts a response head with Node's merged headers view.
func headToProto(h *wire.ResponseHead, join bool) *pb.ResponseHead {
	if h == nil {
		return nil
	}
	merged := h.Merged(join)
	return &pb.ResponseHead{
		StatusCode:          int32(h.StatusCode),
		StatusMessage:       h.StatusMessage,
		HttpVersion:         httpVersion(h),
		RawHeaders:          headersToProto(h.RawHeaders),
		Headers:             mergedToProto(merged),
		DiscardedDuplicates: discarded(h.RawHeaders[:h.HeadersCount], merged),
	}
}

func httpVersion(h *wire.ResponseHead) string {
	return string(rune('0'+h.Major)) + "." + string(rune('0'+h.Minor))
}

// discarded lists the header lines Node's merged view dropped: for each
// name that keeps fewer values than it has lines, the lines past the kept
// ones.
func discarded(raw []wire.Header, merged []wire.MergedHeader) []*pb.Header {
	if len(raw) == len(merged) {
		return nil // no name repeats
	}
	var out []*pb.Header
	for _, m := range merged {
		if m.IsArray() || len(m.Values) != 1 {
			continue
		}
		seen := 0
		for _, h := range raw {
			if len(h.Name) == len(m.Name) && strings.EqualFold(h.Name, m.Name) {
				if seen++; seen > 1 {
					out = append(out, &pb.Header{Name: h.Name, Value: h.Value})
				}
			}
		}
	}
	return out
}

func tlsFromProto(t *pb.TlsOptions) *agentpool.TLSOptions {
	if t == nil {
		return nil
	}
	o := &agentpool.TLSOptions{
		Ciphers:    t.GetCiphers(),
		ServerName: t.GetServername(),
		MinVersion: t.GetMinVersion(),
		MaxVersion: t.GetMaxVersion(),
	}
	if t.GetCa() != "" {
		o.CA = []byte(t.GetCa())
	}
	if t.GetCert() != "" {
		o.Cert = []byte(t.GetCert())
	}
	if t.GetKey() != "" {
		o.Key = []byte(t.GetKey())
	}
	if t.RejectUnauthorized != nil {
		v := t.GetRejectUnauthorized()
		o.RejectUnauthorized = &v
	}
	return o
}

// tlsToProto converts TLS options for display; the key is never returned.
func tlsToProto(o *agentpool.TLSOptions) *pb.TlsOptions {
	if o == nil {
		return nil
	}
	t := &pb.TlsOptions{
		Ca:         string(o.CA),
		Cert:       string(o.Cert),
		Servername: o.ServerName,
		MinVersion: o.MinVersion,
		MaxVersion: o.MaxVersion,
		Ciphers:    o.Ciphers,
	}
	if o.RejectUnauthorized != nil {
		v := *o.RejectUnauthorized
		t.RejectUnauthorized = &v
	}
	return t
}

// agentOptions converts AgentOptions over Node's `new http.Agent()`
// defaults. proxy_env is validated by the pool (Options.Validate).
func agentOptions(p *pb.AgentOptions) (agentpool.Options, error) {
	o := agentpool.DefaultOptions()
	if p == nil {
		return o, nil
	}
	if env := p.GetProxyEnv(); len(env) > 0 {
		o.ProxyEnv = make(map[string]string, len(env))
		for k, v := range env {
			o.ProxyEnv[k] = v
		}
	}
	if p.KeepAlive != nil {
		o.KeepAlive = p.GetKeepAlive()
	}
	if p.KeepAliveMsecs != nil {
		o.KeepAliveMsecs = p.GetKeepAliveMsecs().AsDuration()
	}
	o.MaxSockets = int(p.GetMaxSockets())
	o.MaxTotalSockets = int(p.GetMaxTotalSockets())
	if p.MaxFreeSockets != nil {
		o.MaxFreeSockets = int(p.GetMaxFreeSockets())
	}
	if p.GetScheduling() == pb.Scheduling_SCHEDULING_FIFO {
		o.Scheduling = agentpool.FIFO
	}
	if p.Timeout != nil {
		o.Timeout = p.GetTimeout().AsDuration()
	}
	if p.KeepAliveTimeoutBuffer != nil {
		o.KeepAliveTimeoutBuffer = p.GetKeepAliveTimeoutBuffer().AsDuration()
	}
	o.RetryReusedIdempotent = p.GetRetryReusedIdempotent()
	o.TLS = tlsFromProto(p.GetTls())
	return o, nil
}

func agentOptionsToProto(o agentpool.Options) *pb.AgentOptions {
	ka := o.KeepAlive
	mfs := uint32(o.MaxFreeSockets)
	sched := pb.Scheduling_SCHEDULING_LIFO
	if o.Scheduling == agentpool.FIFO {
		sched = pb.Scheduling_SCHEDULING_FIFO
	}
	return &pb.AgentOptions{
		KeepAlive:              &ka,
		KeepAliveMsecs:         durationpb.New(o.KeepAliveMsecs),
		MaxSockets:             uint32(o.MaxSockets),
		MaxTotalSockets:        uint32(o.MaxTotalSockets),
		MaxFreeSockets:         &mfs,
		Scheduling:             sched,
		Timeout:                durationpb.New(o.Timeout),
		KeepAliveTimeoutBuffer: durationpb.New(o.KeepAliveTimeoutBuffer),
		Tls:                    tlsToProto(o.TLS),
		RetryReusedIdempotent:  o.RetryReusedIdempotent,
		// The snapshot's proxyEnv has its passwords hidden.
		ProxyEnv: o.ProxyEnv,
	}
}

// agentToProto describes an agent from its snapshot.
func agentToProto(e *agentEntry) *pb.Agent {
	snap := e.agent.Snapshot()
	a := &pb.Agent{
		Name:      e.agent.Name(),
		Options:   agentOptionsToProto(snap.Options),
		CreatedAt: timestamppb.New(e.created),
	}
	a.Options.PropagateTraceContext = &e.propagate
	for _, n := range snap.Names {
		a.ActiveSockets += uint32(len(n.Sockets))
		a.FreeSockets += uint32(len(n.FreeSockets))
		a.QueuedRequests += uint32(n.Requests)
	}
	return a
}

var socketStates = [...]pb.SocketState{
	agentpool.StateConnecting: pb.SocketState_SOCKET_STATE_CONNECTING,
	agentpool.StateActive:     pb.SocketState_SOCKET_STATE_ACTIVE,
	agentpool.StateFree:       pb.SocketState_SOCKET_STATE_FREE,
	agentpool.StateClosed:     pb.SocketState_SOCKET_STATE_CLOSED,
	agentpool.StateDetached:   pb.SocketState_SOCKET_STATE_DETACHED,
}

func socketStateToProto(s agentpool.SocketState) pb.SocketState {
	if int(s) < len(socketStates) {
		return socketStates[s]
	}
	return pb.SocketState_SOCKET_STATE_UNSPECIFIED
}

func socketInfoToProto(s *agentpool.SocketInfo) *pb.SocketInfo {
	if s == nil {
		return nil
	}
	out := &pb.SocketInfo{
		Id:             s.ID,
		Name:           s.Name,
		State:          socketStateToProto(s.State),
		LocalAddress:   s.LocalAddress,
		LocalPort:      int32(s.LocalPort),
		RemoteAddress:  s.RemoteAddress,
		RemotePort:     int32(s.RemotePort),
		RemoteFamily:   family(s),
		RequestsServed: s.RequestsServed,
		BytesRead:      s.BytesRead,
		BytesWritten:   s.BytesWritten,
		KeepAlive:      s.KeepAlive,
		NoDelay:        s.NoDelay,
		ViaProxy:       s.ViaProxy,
		Proxy:          s.Proxy,
		ProxyRule:      s.ProxyRule,
	}
	if !s.Created.IsZero() {
		out.CreatedAt = timestamppb.New(s.Created)
	}
	if !s.LastUsed.IsZero() {
		out.LastUsedAt = timestamppb.New(s.LastUsed)
	}
	if s.KeepAliveDelay > 0 {
		out.KeepAliveInitialDelay = durationpb.New(s.KeepAliveDelay)
	}
	if s.Timeout > 0 {
		out.Timeout = durationpb.New(s.Timeout)
	}
	if t := s.TLS; t != nil {
		out.Tls = &pb.TlsInfo{Version: t.Version, Cipher: t.CipherSuite, AlpnProtocol: t.ALPN, PeerSubject: t.PeerSubject, Resumed: t.Resumed}
	}
	return out
}

func family(s *agentpool.SocketInfo) string {
	switch {
	case s.Family == 4:
		return "IPv4"
	case s.Family == 6:
		return "IPv6"
	case s.RemoteAddress != "" && s.RemotePort == 0:
		return "unix"
	}
	return ""
}

func nodeErrorToProto(e *nodeerr.Error) *pb.NodeError {
	if e == nil {
		return nil
	}
	return &pb.NodeError{
		Code:         e.Code,
		Message:      nodeMessage(e),
		Syscall:      e.Syscall,
		Address:      e.Address,
		Port:         int32(e.Port),
		ReusedSocket: httpengine.IsReusedSocket(e),
	}
}

// nodeMessage is err.message as Node has it: for system errors without a
// message of their own, "connect ECONNREFUSED 127.0.0.1:1".
func nodeMessage(e *nodeerr.Error) string {
	if e.Message != "" {
		return e.Message
	}
	return e.Error()
}

// nodeErrorFromProto converts the error a caller gives to Destroy; nil
// stays nil (Node's default error then).
func nodeErrorFromProto(p *pb.NodeError) *nodeerr.Error {
	if p == nil {
		return nil
	}
	return &nodeerr.Error{Code: p.GetCode(), Message: p.GetMessage(), Syscall: p.GetSyscall(), Address: p.GetAddress(), Port: int(p.GetPort())}
}

var eventTargets = [...]pb.EventTarget{
	httpengine.TargetRequest:  pb.EventTarget_EVENT_TARGET_REQUEST,
	httpengine.TargetResponse: pb.EventTarget_EVENT_TARGET_RESPONSE,
}

// eventToProto converts one engine event. join is the request's
// joinDuplicateHeaders; agentName names the agent on 'socket'.
func eventToProto(ev *httpengine.Event, join bool, agentName string) *pb.Event {
	out := &pb.Event{
		Seq:       ev.Seq,
		MonoNanos: int64(ev.Mono),
		Time:      timestamppb.New(ev.Time),
	}
	if int(ev.Target) < len(eventTargets) {
		out.Target = eventTargets[ev.Target]
	}
	switch ev.Kind {
	case httpengine.EventSocket:
		out.Kind = &pb.Event_Socket{Socket: &pb.SocketEvent{Socket: socketInfoToProto(ev.Socket), Reused: ev.Reused, Agent: agentName}}
	case httpengine.EventResponse:
		out.Kind = &pb.Event_Response{Response: &pb.ResponseEvent{Head: headToProto(ev.Head, join), ReusedSocket: ev.Reused,
			Redirects: hopsToProto(ev.Redirects)}}
	case httpengine.EventData:
		out.Kind = &pb.Event_Data{Data: &pb.DataEvent{Chunk: ev.Data}}
	case httpengine.EventEnd:
		out.Kind = &pb.Event_End{End: &pb.EndEvent{
			RawTrailers: headersToProto(ev.Trailers),
			Trailers:    mergedToProto(wire.MergeHeaders(ev.Trailers, join)),
			BodyBytes:   ev.Bytes,
		}}
	case httpengine.EventClose:
		out.Kind = &pb.Event_Close{Close: &pb.CloseEvent{}}
	case httpengine.EventError:
		out.Kind = &pb.Event_Error{Error: &pb.ErrorEvent{Error: nodeErrorToProto(ev.Err)}}
	case httpengine.EventAbort:
		out.Kind = &pb.Event_Abort{Abort: &pb.AbortEvent{}}
	case httpengine.EventAborted:
		out.Kind = &pb.Event_Aborted{Aborted: &pb.AbortedEvent{}}
	case httpengine.EventTimeout:
		out.Kind = &pb.Event_Timeout{Timeout: &pb.TimeoutEvent{}}
	case httpengine.EventInformation:
		out.Kind = &pb.Event_Information{Information: &pb.InformationEvent{Head: headToProto(ev.Head, join)}}
	case httpengine.EventContinue:
		out.Kind = &pb.Event_ContinueEvent{ContinueEvent: &pb.ContinueEvent{}}
	case httpengine.EventUpgrade:
		out.Kind = &pb.Event_Upgrade{Upgrade: &pb.UpgradeEvent{Head: headToProto(ev.Head, join), HeadBytes: ev.Data}}
	case httpengine.EventConnect:
		out.Kind = &pb.Event_Connect{Connect: &pb.ConnectEvent{Head: headToProto(ev.Head, join), HeadBytes: ev.Data}}
	case httpengine.EventFinish:
		out.Kind = &pb.Event_Finish{Finish: &pb.FinishEvent{BodyBytes: ev.Bytes}}
	case httpengine.EventRedirect:
		r := ev.Redirect
		out.Kind = &pb.Event_Redirect{Redirect: &pb.RedirectEvent{
			StatusCode:         int32(r.StatusCode),
			Method:             r.Method,
			RedirectUrl:        r.RedirectURL,
			ResponseHeaders:    mergedToProto(r.Head.Merged(join)),
			RawResponseHeaders: headersToProto(r.Head.RawHeaders),
			AwaitingDecision:   r.Awaiting,
		}}
	case httpengine.EventLogin:
		l := ev.Login
		out.Kind = &pb.Event_Login{Login: &pb.LoginEvent{IsProxy: l.IsProxy, Scheme: l.Scheme, Host: l.Host,
			Port: int32(l.Port), Realm: l.Realm}}
	}
	return out
}

// requestToProto converts a request's properties.
func requestToProto(h *handle) *pb.ClientRequest {
	p := h.req.Properties()
	return &pb.ClientRequest{
		RequestId:        h.id,
		Method:           p.Method,
		Path:             p.Path,
		Host:             p.Host,
		Protocol:         p.Protocol,
		Headers:          headersToProto(p.Headers),
		Aborted:          p.Aborted,
		Destroyed:        p.Destroyed,
		Finished:         p.WritableEnded,
		WritableEnded:    p.WritableEnded,
		WritableFinished: p.WritableFinished,
		HeadersSent:      p.HeadersSent,
		ReusedSocket:     p.ReusedSocket,
		MaxHeadersCount:  int32(p.MaxHeadersCount),
		Socket:           socketInfoToProto(p.Socket),
		Agent:            h.agentName,
		LastSeq:          p.LastSeq,
		Response:         headToProto(p.Response, h.join),
		ChunkedEncoding:  p.ChunkedEncoding,
		Closed:           p.Closed,
		UploadProgress:   uploadToProto(p.Upload),
	}
}

func uploadToProto(u httpengine.UploadProgress) *pb.UploadProgress {
	return &pb.UploadProgress{Active: u.Active, Started: u.Started, Current: u.Current, Total: u.Total}
}

// durationOrZero converts an optional duration.
func durationOrZero(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

// hopsToProto converts the redirect hops followed before a response.
func hopsToProto(hops []httpengine.RedirectInfo) []*pb.RedirectHop {
	if len(hops) == 0 {
		return nil
	}
	out := make([]*pb.RedirectHop, len(hops))
	for i, h := range hops {
		out[i] = &pb.RedirectHop{StatusCode: int32(h.StatusCode), Method: h.Method, Url: h.URL, RedirectUrl: h.RedirectURL}
	}
	return out
}

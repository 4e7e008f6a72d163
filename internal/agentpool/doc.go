// Package agentpool is Node's http.Agent for the gateway: per-name socket
// lists (Node's agent.sockets, agent.freeSockets, agent.requests), the
// maxSockets / maxTotalSockets / maxFreeSockets limits, lifo/fifo choice of
// free sockets, keep-alive with Keep-Alive: timeout=N hints, idle timeouts,
// and dialing (DNS with a timeout, family selection, the egress check on
// every resolved address, localAddress, unix sockets, TLS with Node's
// verification error codes), and proxies (Node's proxyEnv: http targets
// over pooled proxy connections carrying absolute-form requests, https
// targets through CONNECT tunnels with TLS to the origin; see ProxyFor,
// Target.Proxy and ProxyAuthError). The origin behind a proxy, which the
// proxy resolves, is checked by name (Deps.CheckName): for a CONNECT
// target when its tunnel is dialed, for an absolute-form request per
// request through CheckOrigin (origin.go), which the engine calls before
// each Acquire, since those sockets are shared by every origin. Everything it holds is inspectable
// through Snapshot and an event feed (Subscribe).
//
// Who owns what:
//   - The pool owns a socket while it is connecting and while it is free.
//   - An Exchange (the engine's side of one request) owns it from
//     OnConnect(nil) until it calls Socket.Release, Socket.Destroy or
//     Socket.Detach. After Detach the caller owns the connection for good.
//   - Each socket has exactly one goroutine for its whole life: it dials,
//     then reads. While the socket is free it blocks in a one-byte Peek so a
//     server close, a reset or unsolicited bytes remove the socket at once;
//     while it is assigned it calls Exchange.ReadResponse.
//
// Data flows rpc -> httpengine -> agentpool -> net. This package must never
// import internal/httpengine, internal/rpc, gRPC or protobuf packages (it
// imports internal/proxyenv, a pure package, for proxyEnv); its
// errors are *nodeerr.Error values so the layers above can branch on Node's
// codes.
package agentpool

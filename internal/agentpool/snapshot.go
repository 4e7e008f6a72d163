package agentpool

import (
	"net"
	"sort"
	"time"
)

// SocketInfo describes one socket at one moment.
type SocketInfo struct {
	ID    uint64
	Name  string
	State SocketState
	// Local and remote ends; for unix sockets RemoteAddress is the path and
	// the ports are 0.
	LocalAddress  string
	LocalPort     int
	RemoteAddress string
	RemotePort    int
	Family        int // 4, 6, or 0 for unix sockets and sockets still connecting
	// RequestsServed counts the requests the socket was assigned to,
	// the current one included.
	RequestsServed uint64
	BytesRead      uint64
	BytesWritten   uint64
	Created        time.Time
	LastUsed       time.Time // last assignment or release
	Reused         bool      // the current (or last) assignment got a pooled socket
	TLS            *TLSInfo  // nil for plain connections
	KeepAlive      bool
	KeepAliveDelay time.Duration
	NoDelay        bool
	Timeout        time.Duration // idle timeout, 0 for none
	CloseReason    string        // for closed sockets
	// ViaProxy reports a socket to a proxy: the remote end above is the
	// proxy's. Proxy is its URL without credentials; ProxyTLS the TLS with
	// an https proxy (TLS above is the origin's, through a CONNECT tunnel).
	ViaProxy bool
	Proxy    string
	ProxyTLS *TLSInfo
	// ProxyRule is the NO_PROXY entry that sent the socket's first request
	// direct, "" when none did.
	ProxyRule string
	// Dial holds the moments of the socket's dial (see DialTimings); nil
	// while it is connecting. Every SocketInfo of the socket shares it:
	// read it, never write through it.
	Dial *DialTimings
}

// QueuedRequest is one request waiting for a socket.
type QueuedRequest struct {
	ID        uint64 // Want.ID
	QueuedAt  time.Time
	Proxy     string // proxy URL without credentials, "" for direct
	ProxyRule string // NO_PROXY entry that sent it direct, "" if none
}

// NameSnapshot is one name's lists, Node's agent.sockets[name],
// agent.freeSockets[name] and agent.requests[name].length.
type NameSnapshot struct {
	Name        string
	Sockets     []SocketInfo    // connecting and active
	FreeSockets []SocketInfo    // in free-list order, oldest first
	Requests    int             // queued requests
	Queued      []QueuedRequest // the queued requests, in queue order
}

// Snapshot is the state of an agent.
type Snapshot struct {
	Agent string
	// Options are the effective options, with the passwords of ProxyEnv's
	// proxy URLs shown as "xxxxx".
	Options      Options
	Destroyed    bool
	TotalSockets int            // Node's totalSocketCount
	Names        []NameSnapshot // sorted by name
}

// Snapshot returns the agent's pools as they are now.
func (a *Agent) Snapshot() Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	snap := Snapshot{Agent: a.name, Options: a.opts.redacted(), Destroyed: a.destroyed, TotalSockets: a.total}
	for _, p := range a.pools {
		ns := NameSnapshot{Name: p.name, Requests: len(p.queue)}
		for _, s := range p.active {
			ns.Sockets = append(ns.Sockets, s.infoLocked())
		}
		for _, s := range p.free {
			ns.FreeSockets = append(ns.FreeSockets, s.infoLocked())
		}
		for _, w := range p.queue {
			ns.Queued = append(ns.Queued, QueuedRequest{ID: w.id, QueuedAt: w.queuedAt,
				Proxy: proxyDisplay(w.target.Proxy), ProxyRule: w.proxyRule})
		}
		snap.Names = append(snap.Names, ns)
	}
	sort.Slice(snap.Names, func(i, j int) bool { return snap.Names[i].Name < snap.Names[j].Name })
	return snap
}

// Info describes s now.
func (s *Socket) Info() SocketInfo {
	s.agent.mu.Lock()
	defer s.agent.mu.Unlock()
	return s.infoLocked()
}

func (s *Socket) infoLocked() SocketInfo {
	in := SocketInfo{
		ID:             s.id,
		Name:           s.name,
		State:          s.state,
		RequestsServed: s.requests,
		BytesRead:      s.bytesRead.Load(),
		BytesWritten:   s.bytesWritten.Load(),
		Created:        s.created,
		LastUsed:       s.lastUsed,
		Reused:         s.reused,
		TLS:            s.tlsInfo,
		KeepAlive:      s.keepAlive,
		KeepAliveDelay: s.keepAliveDelay,
		NoDelay:        s.noDelay && s.tcp != nil,
		Timeout:        s.timeout,
		CloseReason:    s.closeReason,
		ViaProxy:       s.target.Proxy != nil,
		Proxy:          proxyDisplay(s.target.Proxy),
		ProxyRule:      s.proxyRule,
		Dial:           s.timings,
	}
	if s.tlsInfo != nil {
		c := *s.tlsInfo
		in.TLS = &c
	}
	if s.proxyTLS != nil {
		c := *s.proxyTLS
		in.ProxyTLS = &c
	}
	in.LocalAddress, in.LocalPort, _ = splitAddr(s.laddr)
	var fam int
	in.RemoteAddress, in.RemotePort, fam = splitAddr(s.raddr)
	in.Family = fam
	return in
}

func splitAddr(a net.Addr) (string, int, int) {
	switch v := a.(type) {
	case *net.TCPAddr:
		ap := v.AddrPort()
		ip := ap.Addr()
		fam := 6
		if ip.Unmap().Is4() {
			fam = 4
			ip = ip.Unmap()
		}
		return ip.String(), int(ap.Port()), fam
	case *net.UnixAddr:
		return v.Name, 0, 0
	case nil:
		return "", 0, 0
	}
	return a.String(), 0, 0
}

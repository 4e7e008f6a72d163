package httpengine

import (
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// EventKind names a Node/Electron event.
type EventKind uint8

// The events a ClientRequest and its IncomingMessage emit.
const (
	EventSocket EventKind = iota + 1
	EventResponse
	EventData
	EventEnd
	EventClose
	EventError
	EventAbort
	EventAborted
	EventTimeout
	EventInformation
	EventContinue
	EventUpgrade
	EventConnect
	EventFinish
	EventRedirect
	EventLogin
)

var eventNames = [...]string{
	EventSocket: "socket", EventResponse: "response", EventData: "data", EventEnd: "end",
	EventClose: "close", EventError: "error", EventAbort: "abort", EventAborted: "aborted",
	EventTimeout: "timeout", EventInformation: "information", EventContinue: "continue",
	EventUpgrade: "upgrade", EventConnect: "connect", EventFinish: "finish",
	EventRedirect: "redirect", EventLogin: "login",
}

// String returns Node's name of the event.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Target says which object emitted an event.
type Target uint8

// The emitters.
const (
	TargetRequest Target = iota + 1
	TargetResponse
)

// Event is one emitted event. Only the fields of its Kind are set.
type Event struct {
	Seq    uint64
	Kind   EventKind
	Target Target
	// Mono is the time since the request was created (monotonic clock).
	Mono time.Duration
	// Time is the wall-clock time of the event.
	Time time.Time

	// Socket: the socket as known at assignment; Reused: from the pool.
	Socket *agentpool.SocketInfo
	Reused bool
	// Head: response, information, upgrade, connect.
	Head *wire.ResponseHead
	// Data: a body chunk (data), or the bytes read past the head (upgrade, connect).
	Data []byte
	// Err: error.
	Err *nodeerr.Error
	// Trailers: end.
	Trailers []Header
	// Bytes: body bytes in total (end: received; finish: sent; data: the
	// response body received so far, this chunk included, so that a
	// consumer may judge a data event alone, whichever events it skipped).
	Bytes uint64
	// Redirect: a redirect hop (redirect). Redirects: the hops followed
	// before this response (response).
	Redirect  *RedirectInfo
	Redirects []RedirectInfo
	// Login: the authInfo of a login event.
	Login *LoginInfo

	// buf is the pooled buffer behind Data, when Data is one, for the log
	// to reuse (see Options.ReuseBodyBuffers). In an event returned by NextHeld it
	// says which buffer Done gives back. holds and escaped are the log's
	// record, in its own copy of the event, of the readers of buf:
	// NextHeld's not yet Done, and whether a plain Next read it.
	buf     *[]byte
	holds   int32
	escaped bool
}

// String renders "target:name" for logs and tests, e.g. "res:data".
func (e Event) String() string {
	p := "req:"
	if e.Target == TargetResponse {
		p = "res:"
	}
	s := p + e.Kind.String()
	if e.Err != nil {
		s += "(" + e.Err.Code + ")"
	}
	return s
}

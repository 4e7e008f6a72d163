package httpengine

import (
	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
)

// Properties are the readable properties of a ClientRequest at one moment.
type Properties struct {
	Method   string
	Path     string
	Host     string
	Protocol string
	// Headers are the outgoing header lines in order and raw casing.
	Headers []Header
	// Aborted: abort() was called. Destroyed: destroy(), abort() or a failure.
	Aborted, Destroyed bool
	// WritableEnded: end() was called (Node's finished). WritableFinished:
	// everything was handed to the operating system.
	WritableEnded, WritableFinished bool
	HeadersSent                     bool
	ReusedSocket                    bool
	MaxHeadersCount                 int
	ChunkedEncoding                 bool
	// Socket is the assigned socket, nil before assignment.
	Socket *agentpool.SocketInfo
	// Response is the response head once received.
	Response *wire.ResponseHead
	// Closed: 'close' was emitted.
	Closed  bool
	LastSeq uint64
	Upload  UploadProgress
}

// UploadProgress is Electron's request.getUploadProgress().
type UploadProgress struct {
	// Active: the request is in progress (not closed, not destroyed).
	Active bool
	// Started: the head was sent.
	Started bool
	// Current: body bytes handed to the operating system.
	Current uint64
	// Total: the body size when known (Content-Length, or all queued after
	// end()), else 0.
	Total uint64
}

// Properties returns a snapshot of the request's properties.
func (c *ClientRequest) Properties() Properties {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := Properties{
		Method:           c.r.method,
		Path:             c.r.path,
		Host:             c.r.host,
		Protocol:         c.r.protocol,
		Headers:          c.r.headers.Lines(),
		Aborted:          c.aborted,
		Destroyed:        c.destroyed,
		WritableEnded:    c.ended,
		WritableFinished: c.finished,
		HeadersSent:      c.headersSent,
		ReusedSocket:     c.reused,
		MaxHeadersCount:  c.r.opts.MaxHeadersCount,
		ChunkedEncoding:  c.chunked,
		Response:         c.resHead,
		Closed:           c.phase == phaseClosed,
		LastSeq:          c.log.LastSeq(),
	}
	if c.sock != nil {
		info := c.sock.Info()
		p.Socket = &info
	}
	p.Upload = c.uploadLocked()
	return p
}

// UploadProgress is Electron's request.getUploadProgress().
func (c *ClientRequest) UploadProgress() UploadProgress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uploadLocked()
}

func (c *ClientRequest) uploadLocked() UploadProgress {
	u := UploadProgress{
		Active:  c.phase != phaseClosed && !c.destroyed,
		Started: c.headersSent && c.flushedGen >= c.headGen && c.headGen > 0,
		Current: c.bodySent,
	}
	switch {
	case c.contentLength >= 0:
		u.Total = uint64(c.contentLength)
	case c.ended:
		u.Total = c.bodyQueued
	}
	return u
}

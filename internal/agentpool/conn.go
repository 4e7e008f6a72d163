package agentpool

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
)

// trackedConn is the connection the engine sees: it counts bytes, records
// activity for the idle timer, and makes the first read error sticky so a
// socket whose free-time Peek saw EOF or a reset reports that same error to
// the exchange that gets it next. Deadline errors are not sticky: they are
// not the end of the connection (Detach uses one to stop the reader).
type trackedConn struct {
	net.Conn
	s    *Socket
	rerr atomic.Pointer[error]
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if e := c.rerr.Load(); e != nil {
		return 0, *e
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.s.bytesRead.Add(uint64(n))
		c.activity()
	}
	if err != nil && !isTimeout(err) {
		c.rerr.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.s.bytesWritten.Add(uint64(n))
		c.activity()
	}
	return n, err
}

func (c *trackedConn) activity() {
	c.s.touch()
	if c.s.timerFired.Load() {
		c.s.rearm()
	}
}

// failed reports whether a read has already failed for good.
func (c *trackedConn) failed() bool {
	return c != nil && c.rerr.Load() != nil
}

// NetConn returns the wrapped connection (a *tls.Conn for https).
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

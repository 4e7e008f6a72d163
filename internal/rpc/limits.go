package rpc

import (
	"encoding/base64"
	"errors"
	"math"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/limits"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// This file applies the per-request bounds of Options.Limits (the limits
// package judges, this package counts) where the bytes flow:
//
//   - header bytes: the caller's header lines and the Authorization line
//     its credentials become (auth, or the URL's user info), at creation
//     (startRequest, so Fetch too), before each header edit (SetHeader,
//     AppendHeader, RemoveHeader and their Exchange ops; headerMeter), and
//     before the credentials of a Login (the RPC and the Exchange op;
//     admitLogin). An edit or a Login over the bound is refused and
//     changes nothing; the request goes on.
//   - request body bytes: before each chunk is written (Write, End, the
//     Exchange write and end ops, a Fetch body before the request starts).
//     Past the bound the request is destroyed with the limit's error (its
//     'error' event carries the code, the socket is destroyed, the handle
//     finishes and gives its slots back as any other); the call that
//     crossed it answers RESOURCE_EXHAUSTED, and so does every Events or
//     Exchange stream of the request once it delivered the request's last
//     event (handle.overLimit).
//   - response body bytes: as Events or Exchange deliver data (and in
//     Fetch), each data event judged by the body total the engine read up
//     to it (Event.Bytes), not by what one stream delivered: a data event
//     whose total passes the bound is delivered by no stream: the
//     request is destroyed if it still runs, and the stream ends at once
//     with RESOURCE_EXHAUSTED, so the caller never sees a byte past the
//     bound nor an 'end' after a cut body. The engine's event buffer is
//     held to the bound (startRequest), so the gateway reads little past it.
//   - Tunnel duration and bytes: in Tunnel (tunnelMeter).
//
// Size bounds carry no RetryInfo: the same request meets the same bound.

// headerLineBytes is what one header line counts against
// limits.Options.MaxHeaderBytes: "Name: value\r\n".
func headerLineBytes(name, value string) int64 { return int64(len(name) + len(value) + 4) }

// basicLineBytes is what the line "<name>: Basic <base64 of cred>" counts
// against limits.Options.MaxHeaderBytes, without encoding cred.
func basicLineBytes(name string, cred int) int64 {
	return int64(len(name)+len("Basic ")+base64.StdEncoding.EncodedLen(cred)) + 4
}

// headerMeter counts a request's header bytes as the caller gave them (its
// creation headers and the Authorization line of its credentials, then
// its edits), by lower-cased name; the headers the gateway adds (Host,
// trace context) do not count. Guarded by handle.headerMu.
type headerMeter struct {
	total  int64
	byName map[string]int64
}

// newHeaderMeter counts the header lines of o, the engine options of a
// request about to be created: its headers, and the Authorization line the
// engine makes of its credentials when none of them is one (as Node's
// ClientRequest constructor does; a later setHeader replaces it).
func newHeaderMeter(o *httpengine.Options) *headerMeter {
	m := &headerMeter{byName: make(map[string]int64, len(o.Headers)+1)}
	for _, h := range o.Headers {
		n := headerLineBytes(h.Name, h.Value)
		m.byName[strings.ToLower(h.Name)] += n
		m.total += n
	}
	if cred := credentialsOf(o); cred != "" && m.byName["authorization"] == 0 {
		n := basicLineBytes("Authorization", len(cred))
		m.byName["authorization"] = n
		m.total += n
	}
	return m
}

// credentialsOf returns the "user:password" the engine turns into a Basic
// Authorization header: Options.Auth, else the URL's user info, decoded
// (httpengine's resolve). A URL that does not parse yields none: the
// engine refuses it anyway.
func credentialsOf(o *httpengine.Options) string {
	if o.Auth != "" {
		return o.Auth
	}
	if !strings.Contains(o.URL, "@") {
		return "" // no user info; spares the parse
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return u.User.Username() + ":" + pw
}

// edit returns the total after setHeader (replace) or appendHeader of
// values under name, and the bytes name would then count.
func (m *headerMeter) edit(name string, values []string, replace bool) (total, named int64) {
	lower := strings.ToLower(name)
	named = m.byName[lower]
	total = m.total
	if replace {
		total -= named
		named = 0
	}
	for _, v := range values {
		n := headerLineBytes(name, v)
		named += n
		total += n
	}
	return total, named
}

// set records the bytes name counts now.
func (m *headerMeter) set(name string, named int64) {
	lower := strings.ToLower(name)
	m.total += named - m.byName[lower]
	if named == 0 {
		delete(m.byName, lower)
		return
	}
	m.byName[lower] = named
}

// editHeader applies a header edit of h within the header bound: setHeader
// (replace), appendHeader, or removeHeader (values nil, replace).
func (s *Service) editHeader(h *handle, name string, values []string, replace bool, apply func() error) error {
	h.headerMu.Lock()
	defer h.headerMu.Unlock()
	if h.headers == nil {
		return apply()
	}
	total, named := h.headers.edit(name, values, replace)
	if err := s.opts.Limits.CheckHeaders(total); err != nil {
		return err
	}
	if err := apply(); err != nil {
		return err
	}
	h.headers.set(name, named)
	return nil
}

// setHeader is request.setHeader within the header bound.
func (s *Service) setHeader(h *handle, name string, values []string) error {
	return s.editHeader(h, name, values, true, func() error { return h.req.SetHeader(name, values...) })
}

// appendHeader is request.appendHeader within the header bound.
func (s *Service) appendHeader(h *handle, name string, values []string) error {
	return s.editHeader(h, name, values, false, func() error { return h.req.AppendHeader(name, values...) })
}

// removeHeader is request.removeHeader, counted out of the header bound.
func (s *Service) removeHeader(h *handle, name string) error {
	return s.editHeader(h, name, nil, true, func() error { return h.req.RemoveHeader(name) })
}

// admitLogin judges the credentials of a Login answering h's 'login'
// against the header bound, before they are given to the engine: the
// request is sent again with them as a Basic Authorization (a server's
// challenge) or Proxy-Authorization (a proxy's) line. It counts the
// longer of the two on top of the header bytes so far, without counting
// out an Authorization line it may replace: a bound, not an exact count.
// Empty credentials cancel the login and add nothing. A refused Login
// changes nothing: the 'login' still waits.
func (s *Service) admitLogin(h *handle, username, password string) error {
	if username == "" && password == "" {
		return nil
	}
	h.headerMu.Lock()
	defer h.headerMu.Unlock()
	if h.headers == nil {
		return nil
	}
	return s.opts.Limits.CheckHeaders(h.headers.total + basicLineBytes("Proxy-Authorization", len(username)+1+len(password)))
}

// admitBody counts n more body bytes the caller is about to write into h's
// request. Past the bound it returns the limit's error: the chunk must not
// be written, and the caller ends the request with endOverLimit once it
// reported the refusal (an Exchange's op_refused comes before the events
// of the destruction).
func (s *Service) admitBody(h *handle, n int) error {
	if n == 0 || s.bounds.MaxRequestBodyBytes <= 0 {
		return nil
	}
	return s.opts.Limits.CheckRequestBody(h.bodyBytes.Add(int64(n)))
}

// endsRequest reports whether a refused call or op also ends the request:
// a chunk past the request body bound does (a header edit past the header
// bound is only refused).
func endsRequest(err error) bool {
	return nodeerr.Code(err) == limits.CodeRequestBodyTooLarge
}

// admitEvent returns nil when ev, about to be delivered by a stream of h,
// may go out, else the response body bound's error: ev is a data event
// whose running total (Event.Bytes: the body received up to and including
// it) passes the bound. The verdict is the event's own, so it is the same
// whichever stream delivers ev, in whatever order, and whichever events
// that stream skipped (from_seq, a resubscription): every data event at or
// past the first one over the bound is refused, and no stream can be given
// more than the bound. The first refusal destroys the request. The stream
// must end with the error at once.
func (s *Service) admitEvent(h *handle, ev *httpengine.Event) error {
	if ev.Kind != httpengine.EventData || s.bounds.MaxResponseBodyBytes <= 0 {
		return nil
	}
	first, err := h.response.admit(ev.Bytes, s.opts.Limits)
	if first {
		_ = h.endOverLimit(err)
	}
	return err
}

// responseMeter records that one request's response passed the response
// body bound. It counts nothing itself: a data event carries the running
// total it is judged by (Event.Bytes), so events skipped by one stream and
// delivered by another, or delivered twice, are counted exactly once, by
// the engine that read them.
type responseMeter struct {
	over atomic.Bool // a data event past the bound was refused
}

// admit judges a data event whose running total is total. It returns the
// bound's error when total passes it; first is set for the first such
// event (of any stream), whose stream ends the request.
func (m *responseMeter) admit(total uint64, l *limits.Limiter) (first bool, err error) {
	if err = l.CheckResponseBody(int64(min(total, math.MaxInt64))); err != nil {
		first = m.over.CompareAndSwap(false, true)
	}
	return first, err
}

// endOverLimit ends h's request because it passed a bound: it records the
// limit (the request's streams end with its status) and destroys the
// request with the limit's code on its 'error' event. It returns err.
func (h *handle) endOverLimit(err error) error {
	var ex *limits.Exceeded
	if errors.As(err, &ex) {
		h.overLimit.CompareAndSwap(nil, ex)
	}
	h.req.Destroy(nodeErrorOf(err))
	return err
}

// streamEnd is how a stream of h (Events, Exchange) ends after the
// request's last event: OK, or the status of the limit that ended it.
func (h *handle) streamEnd() error {
	if ex := h.overLimit.Load(); ex != nil {
		return toStatus(ex)
	}
	return nil
}

// fetchLimits applies the per-request bounds to a Fetch before it starts:
// its body against the request body bound (refused before anything
// starts), and the response body bound, which lowers limit, Fetch's own
// cap, when it is smaller; bound reports that it did. (Header bytes are
// judged in startRequest.)
func (s *Service) fetchLimits(in *pb.FetchRequest, limit int64) (_ int64, bound bool, _ error) {
	if s.bounds.MaxRequestBodyBytes > 0 {
		if err := s.opts.Limits.CheckRequestBody(int64(len(in.GetBody()))); err != nil {
			return 0, false, err
		}
	}
	if b := s.bounds.MaxResponseBodyBytes; b > 0 && b < limit {
		return b, true, nil
	}
	return limit, false, nil
}

// fetchTooLarge is the error of a Fetch response past limit: the response
// body bound's when bound (fetchLimits), else Fetch's own
// ERR_GATEWAY_RESPONSE_TOO_LARGE.
func (s *Service) fetchTooLarge(limit int64, bound bool) error {
	if bound {
		return s.opts.Limits.CheckResponseBody(limit + 1)
	}
	return tooLarge(limit)
}

// tunnelMeter bounds one Tunnel: the bytes carried both ways, and its
// duration (a timer that closes the connection). The first bound passed is
// kept as the Tunnel's status.
type tunnelMeter struct {
	l        *limits.Limiter
	maxBytes int64 // 0: no byte bound
	bytes    atomic.Int64
	over     atomic.Pointer[limits.Exceeded]
	timer    *time.Timer // nil without a duration bound
}

// startTunnelMeter starts the duration bound: at MaxTunnelDuration it
// records the limit and calls closeConn (on the timer's goroutine, which
// ends with it). stop must be called when the Tunnel ends.
func (s *Service) startTunnelMeter(closeConn func()) *tunnelMeter {
	m := &tunnelMeter{l: s.opts.Limits, maxBytes: s.bounds.MaxTunnelBytes}
	if d := s.bounds.MaxTunnelDuration; d > 0 {
		m.timer = time.AfterFunc(d, func() {
			m.exceeded(m.l.TunnelTooLong())
			closeConn()
		})
	}
	return m
}

// stop stops the duration timer.
func (m *tunnelMeter) stop() {
	if m.timer != nil {
		m.timer.Stop()
	}
}

// add counts n bytes carried and reports whether the Tunnel is still within
// its byte bound; past it the limit is recorded and false returned: the
// bytes must not be carried.
func (m *tunnelMeter) add(n int) bool {
	if m.maxBytes <= 0 {
		return true
	}
	if err := m.l.CheckTunnelBytes(m.bytes.Add(int64(n))); err != nil {
		m.exceeded(err)
		return false
	}
	return true
}

func (m *tunnelMeter) exceeded(err error) {
	var ex *limits.Exceeded
	if errors.As(err, &ex) {
		m.over.CompareAndSwap(nil, ex)
	}
}

// err is the limit the Tunnel passed, nil if none.
func (m *tunnelMeter) err() error {
	if ex := m.over.Load(); ex != nil {
		return ex
	}
	return nil
}

// checkProxyCredentials refuses an agent whose proxy_env names a proxy URL
// with credentials whose Proxy-Authorization line alone is over the
// per-request header bound: the engine sends that line with every request
// through the proxy (absolute-form and CONNECT), and the caller chose it.
func (s *Service) checkProxyCredentials(o agentpool.Options) error {
	for _, v := range o.ProxyEnv {
		u, err := url.Parse(v)
		if err != nil {
			continue // the pool validates the URL itself
		}
		if pa := agentpool.ProxyAuthorization(u); pa != "" {
			if err := s.opts.Limits.CheckHeaders(headerLineBytes("Proxy-Authorization", pa)); err != nil {
				return err
			}
		}
	}
	return nil
}

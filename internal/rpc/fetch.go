package rpc

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// inlineEndBytes is the largest body Fetch writes before reading the
// response on the same goroutine: a body this small fits in the socket
// buffer, so an upstream that answers without reading it cannot block the
// write. Larger bodies are written by a helper goroutine while the handler
// reads the response, as Node does.
const inlineEndBytes = 64 << 10

// Fetch is one request with its whole body and the whole response back.
// It reads the engine's events directly (no per-event proto conversion),
// pre-sizes the body from Content-Length and fails with RESOURCE_EXHAUSTED
// (ERR_GATEWAY_RESPONSE_TOO_LARGE) as soon as the body is known to exceed
// the cap. The RPC's deadline bounds the whole request: when the context
// ends the request is cancelled as by an AbortSignal. Any HTTP response is
// a successful RPC; a request that fails (no response, or a response cut
// short) answers the error's status.
func (c *clientRequestService) Fetch(ctx context.Context, in *pb.FetchRequest) (*pb.FetchResponse, error) {
	resp, err := c.svc.fetch(ctx, in)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// endBody is request.end(body); a failure to write shows as an error
// event. A lent body (release not nil, see fetchbody.go) goes back once
// written.
func endBody(ctx context.Context, cr *httpengine.ClientRequest, body []byte, release func()) {
	if release != nil {
		_ = cr.EndBorrowed(ctx, body, release)
		return
	}
	_ = cr.End(ctx, body)
}

func (s *Service) fetch(ctx context.Context, in *pb.FetchRequest) (*pb.FetchResponse, error) {
	o := in.GetOptions()
	if o.GetUrl() != "" || o.GetMethod() != "" || len(o.GetHeaders()) > 0 || o.GetAgent() != "" {
		return nil, badArgument("Fetch: url, method, headers and agent go in FetchRequest, not in its options")
	}
	sp, err := specFromProto(o)
	if err != nil {
		return nil, err
	}
	sp.opts.URL, sp.opts.Method, sp.opts.Headers, sp.agent = in.GetUrl(), in.GetMethod(), headersFromProto(in.GetHeaders()), in.GetAgent()
	// Fetch reads its events with NextHeld, copies each chunk out and
	// gives it back at once, and drops what it read when it returns: the
	// read buffers are reused.
	sp.opts.ReuseBodyBuffers = true
	if sp.opts.Redirect == httpengine.RedirectDeferred {
		return nil, badArgument("Fetch cannot answer a deferred redirect: use follow, error or manual, or Exchange")
	}
	limit := s.opts.MaxFetchResponseBytes
	if n := in.GetMaxResponseBytes(); n > 0 && n < limit {
		limit = n
	}
	limit, bound, err := s.fetchLimits(in, limit)
	if err != nil {
		return nil, err
	}

	if err := s.handles.reserve(); err != nil {
		return nil, err
	}
	defer s.handles.unreserve()
	cr, _, err := s.startRequest(ctx, &sp)
	if err != nil {
		return nil, err
	}

	// The body: small ones inline, large ones on a helper goroutine that
	// ends when End returns, which it does once the body was written or the
	// request ended (Dispose below ends it).
	var endDone chan struct{}
	defer func() {
		cr.Dispose()
		if endDone != nil {
			<-endDone
		}
	}()
	reqBody, release := in.GetBody(), takeLentBody(ctx)
	if release != nil {
		// The buffer goes back once the body is written, while the call
		// (and the interceptors holding its message) goes on: the message
		// must not offer those bytes any more.
		in.Body = nil
	}
	if len(reqBody) <= inlineEndBytes {
		endBody(ctx, cr, reqBody, release)
	} else {
		endDone = make(chan struct{})
		go func() {
			defer close(endDone)
			endBody(ctx, cr, reqBody, release)
		}()
	}

	var (
		out      pb.FetchResponse
		head     *wire.ResponseHead
		body     []byte
		trailers []httpengine.Header
		endMono  time.Duration
	)
	log := cr.Events()
	defer log.DropDelivered()
	for seq := uint64(1); ; seq++ {
		ev, err := log.NextHeld(ctx, seq)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil { // the caller cancelled, or the deadline passed
			cr.Cancel(err)
			return nil, err
		}
		switch ev.Kind {
		case httpengine.EventSocket:
			out.ReusedSocket = ev.Reused
		case httpengine.EventInformation:
			out.Informational = append(out.Informational, headToProto(ev.Head, sp.opts.JoinDuplicateHeaders))
		case httpengine.EventResponse:
			head = ev.Head
			out.ReusedSocket = ev.Reused
			out.Redirects = hopsToProto(ev.Redirects)
			if cl := head.ContentLength; cl > limit {
				cr.Destroy(nil)
				return nil, s.fetchTooLarge(limit, bound)
			} else if cl > 0 {
				body = make([]byte, 0, cl)
			}
		case httpengine.EventData:
			if int64(len(body)+len(ev.Data)) > limit {
				cr.Destroy(nil)
				return nil, s.fetchTooLarge(limit, bound)
			}
			body = append(body, ev.Data...)
		case httpengine.EventEnd:
			trailers, endMono = ev.Trailers, ev.Mono
		case httpengine.EventLogin:
			// Fetch has no way to answer a login: fail at once rather than
			// wait for the login timeout.
			cr.Destroy(nil)
			what := "the server"
			if ev.Login.IsProxy {
				what = "the proxy"
			}
			return nil, toStatus(nodeerr.New(httpengine.ErrLoginCancelled, what+" asked for credentials ("+ev.Login.Scheme+
				" realm \""+ev.Login.Realm+"\"); Fetch cannot answer a login: put them in the proxy URL or the request, or use Exchange"))
		case httpengine.EventUpgrade, httpengine.EventConnect:
			// Fetch cannot carry a tunnel: the head and the bytes past it
			// are the response; Dispose closes the socket.
			head, body, endMono = ev.Head, ev.Data, ev.Mono
		case httpengine.EventError:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if ev.Err == nil { // not emitted by the engine; no typed-nil error
				return nil, errors.New("fetch: error event without an error")
			}
			return nil, ev.Err
		}
		// The chunk was copied into body: its buffer may be reused. (A
		// return above keeps its hold; the buffer is then collected.)
		log.Done(&ev)
	}
	if head == nil { // cannot happen: a request closes with a response or an error
		return nil, errors.New("fetch: the request closed without a response")
	}
	join := sp.opts.JoinDuplicateHeaders
	out.StatusCode = int32(head.StatusCode)
	out.StatusMessage = head.StatusMessage
	out.HttpVersion = httpVersion(head)
	out.RawHeaders = headersToProto(head.RawHeaders)
	out.Headers = mergedToProto(head.Merged(join))
	out.RawTrailers = headersToProto(trailers)
	out.Trailers = mergedToProto(wire.MergeHeaders(trailers, join))
	out.Body = body
	out.Duration = durationpb.New(endMono)
	if p := cr.Properties(); p.Socket != nil {
		out.Socket = socketInfoToProto(p.Socket)
	}
	return &out, nil
}

func tooLarge(limit int64) error {
	return gwError(codeResponseTooLarge, "the response body exceeds the Fetch limit of "+strconv.FormatInt(limit, 10)+" bytes; use Exchange or Events to stream it")
}

package rpc

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/httpgateway/httpgateway/internal/egress"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/limits"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// errorDomain is the google.rpc.ErrorInfo domain of every status this
// package returns.
const errorDomain = "httpgateway"

// Gateway codes the rpc layer raises for conditions Node has no code for.
// They travel as the ErrorInfo reason (and, for the idle reaper, as the code
// of an error event), so callers branch on them like on Node's codes.
const (
	codeRequestNotFound  = "ERR_GATEWAY_REQUEST_NOT_FOUND"  // no live request has that id
	codeAgentNotFound    = "ERR_GATEWAY_AGENT_NOT_FOUND"    // no agent has that name
	codeAgentExists      = "ERR_GATEWAY_AGENT_EXISTS"       // CreateAgent with a taken name
	codeGlobalAgent      = "ERR_GATEWAY_GLOBAL_AGENT"       // DestroyAgent("global")
	codeTooManyRequests  = "ERR_GATEWAY_TOO_MANY_REQUESTS"  // MaxLiveRequests reached
	codeResponseTooLarge = "ERR_GATEWAY_RESPONSE_TOO_LARGE" // Fetch body over its cap
	codeUnimplemented    = "ERR_GATEWAY_UNIMPLEMENTED"      // a feature that has not landed yet
	codeIdleTimeout      = "ERR_GATEWAY_IDLE_TIMEOUT"       // the reaper destroyed the request
	codeShuttingDown     = "ERR_GATEWAY_SHUTTING_DOWN"      // the service was closed
	codeRoleChanged      = "ERR_GATEWAY_ROLE_CHANGED"       // the caller's role changed since it created the request
	codeNoTunnel         = "ERR_GATEWAY_NO_TUNNEL"          // Tunnel without an upgrade/connect socket
	codeBadArgument      = "ERR_GATEWAY_INVALID_ARGUMENT"   // a malformed RPC message
	codeEventGone        = "ERR_GATEWAY_EVENT_GONE"         // resubscription from a dropped seq
)

// gwError returns a gateway error with code and message.
func gwError(code, msg string) *nodeerr.Error { return nodeerr.New(code, msg) }

// toStatus is THE function that turns an error of the engine, the pool or
// this package into a gRPC status carrying a google.rpc.ErrorInfo whose
// reason is the Node code (DESIGN.md "Errors"). Every RPC returns its
// errors through it; nothing else builds a status from an error.
//
// A nil error stays nil. An error that already is a gRPC status (from the
// transport) is returned as it is.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	ne := nodeerr.As(err)
	if ne == nil {
		// Plain Go errors: context ends, then anything Classify knows (a
		// dial error that escaped the engine); the rest is a bug.
		switch {
		case errors.Is(err, context.Canceled):
			return status.Error(codes.Canceled, err.Error())
		case errors.Is(err, context.DeadlineExceeded):
			return status.Error(codes.DeadlineExceeded, err.Error())
		}
		if ne = nodeerr.Classify(err, "", "", 0); ne == nil {
			return status.Error(codes.Internal, err.Error())
		}
	}
	st := status.New(codeOf(ne.Code), ne.Error())
	info := &errdetails.ErrorInfo{Reason: ne.Code, Domain: errorDomain}
	if ne.Syscall != "" || ne.Address != "" || ne.Port != 0 {
		info.Metadata = map[string]string{}
		if ne.Syscall != "" {
			info.Metadata["syscall"] = ne.Syscall
		}
		if ne.Address != "" {
			info.Metadata["address"] = ne.Address
		}
		if ne.Port != 0 {
			info.Metadata["port"] = strconv.Itoa(ne.Port)
		}
	}
	// An egress denial names the rule that decided it, so an operator can
	// tell which line of the policy to look at.
	if d, ok := egress.DecisionOf(err); ok {
		if info.Metadata == nil {
			info.Metadata = map[string]string{}
		}
		for k, v := range d.Metadata() {
			info.Metadata[k] = v
		}
	}
	details := []protoadapt.MessageV1{info}
	// A per-identity limit says when a retry may succeed: the rate
	// limiter's own delay, or a backoff for a concurrency slot. The
	// per-request bounds have no RetryAfter: a retry would not help.
	var ex *limits.Exceeded
	if errors.As(err, &ex) && ex.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(ex.RetryAfter)})
	}
	if d, derr := st.WithDetails(details...); derr == nil {
		st = d
	}
	return st.Err()
}

// codeOf is the decision table of toStatus, one Node code to one gRPC code.
func codeOf(code string) codes.Code {
	switch code {
	// The caller sent something Node would have thrown on synchronously:
	// bad method, header, path, URL, protocol, option value.
	case nodeerr.ERR_UNESCAPED_CHARACTERS, nodeerr.ERR_HTTP_INVALID_HEADER_VALUE,
		nodeerr.ERR_OUT_OF_RANGE, codeBadArgument:
		return codes.InvalidArgument
	// The call is well-formed but the request is past the point where it is
	// allowed: Node throws these on a request in the wrong state.
	case nodeerr.ERR_HTTP_HEADERS_SENT, nodeerr.ERR_STREAM_WRITE_AFTER_END,
		nodeerr.ERR_STREAM_DESTROYED, codeNoTunnel, codeGlobalAgent,
		nodeerr.ERR_GATEWAY_AGENT_DESTROYED:
		return codes.FailedPrecondition
	// Handles that do not exist (never did, reaped, or freed after close).
	case codeRequestNotFound, codeAgentNotFound:
		return codes.NotFound
	case codeAgentExists:
		return codes.AlreadyExists
	// The egress policy refused the destination: the caller may not go there.
	case nodeerr.ERR_GATEWAY_EGRESS_DENIED:
		return codes.PermissionDenied
	// Server-side caps: live requests, Fetch response size.
	case codeTooManyRequests, codeResponseTooLarge:
		return codes.ResourceExhausted
	// Per-identity limits (internal/limits): this caller's requests, handles
	// or request rate; other callers are unaffected. RetryInfo says when.
	case limits.CodeTooManyOpen, limits.CodeTooManyLive, limits.CodeRateLimited:
		return codes.ResourceExhausted
	// Per-request bounds (internal/limits): one request's headers, request
	// or response body, one Tunnel's duration or bytes. The request (or
	// Tunnel) ended; no RetryInfo, the same request meets the same bound.
	case limits.CodeHeadersTooLarge, limits.CodeRequestBodyTooLarge, limits.CodeResponseBodyTooLarge,
		limits.CodeTunnelTooLong, limits.CodeTunnelTooLarge:
		return codes.ResourceExhausted
	case codeUnimplemented:
		return codes.Unimplemented
	// Events from a sequence number the log no longer retains.
	case codeEventGone:
		return codes.OutOfRange
	// The caller's identity was given another role after it created the
	// request: the request was destroyed rather than dial on under the old
	// role's egress policy.
	case codeRoleChanged:
		return codes.PermissionDenied
	// The service is closing: another replica may serve the call.
	case codeShuttingDown:
		return codes.Unavailable
	// A timeout on the way to the upstream (connect, or a deadline) is the
	// gRPC deadline's analogue; only Fetch surfaces it as a status.
	case nodeerr.ETIMEDOUT:
		return codes.DeadlineExceeded
	// An AbortSignal fired: the caller cancelled.
	case nodeerr.ABORT_ERR:
		return codes.Canceled
	// The idle reaper destroyed the request: nobody drove it in time.
	case codeIdleTimeout:
		return codes.Aborted
	// FollowRedirect with no deferred redirect waiting: wrong state.
	case httpengine.ErrNoRedirectPending:
		return codes.FailedPrecondition
	// The upstream redirected in a way the request's redirect mode does not
	// allow to follow (error mode, too many hops, a body that cannot be
	// replayed, a Location that is not http(s)): sending the same request
	// again gets the same answer, so not UNAVAILABLE.
	case httpengine.ErrRedirectRefused, httpengine.ErrTooManyRedirects,
		httpengine.ErrRedirectNotReplayable, httpengine.ErrInvalidRedirect:
		return codes.FailedPrecondition
	// Nobody called FollowRedirect (or Login) before the decision deadline.
	case httpengine.ErrRedirectTimeout, httpengine.ErrLoginTimeout:
		return codes.DeadlineExceeded
	// Login with no 'login' waiting: wrong state.
	case httpengine.ErrNoLoginPending:
		return codes.FailedPrecondition
	// The caller cancelled a login with empty credentials, or the proxy or
	// server kept refusing the credentials, or demanded them for a CONNECT:
	// the caller lacks valid credentials.
	case httpengine.ErrLoginCancelled, httpengine.ErrTooManyLogins, nodeerr.ERR_GATEWAY_PROXY_AUTH_REQUIRED:
		return codes.Unauthenticated
	}
	switch {
	// ERR_INVALID_HTTP_TOKEN, ERR_INVALID_CHAR, ERR_INVALID_URL,
	// ERR_INVALID_PROTOCOL, ERR_INVALID_ARG_VALUE, ...: bad input.
	case strings.HasPrefix(code, "ERR_INVALID_"):
		return codes.InvalidArgument
	// Connection-level failures reaching the upstream (ECONNREFUSED,
	// ECONNRESET, ENOTFOUND, EAI_AGAIN, EHOSTUNREACH, EPIPE, ...), TLS
	// failures (EPROTO, certificate codes) and a malformed upstream response
	// (HPE_*): what HTTP calls 502 Bad Gateway, which gRPC's HTTP mapping
	// makes UNAVAILABLE. The reason tells them apart.
	case strings.HasPrefix(code, "E") && !strings.HasPrefix(code, "ERR_"),
		strings.HasPrefix(code, "HPE_"),
		strings.HasPrefix(code, "ERR_TLS_"), strings.HasPrefix(code, "CERT_"),
		strings.HasPrefix(code, "UNABLE_TO_"), strings.HasPrefix(code, "DEPTH_ZERO_"),
		strings.HasPrefix(code, "SELF_SIGNED_"), code == nodeerr.ERR_GATEWAY_TOO_MANY_1XX,
		code == nodeerr.ERR_HTTP_CONTENT_LENGTH_MISMATCH:
		return codes.Unavailable
	}
	// Anything else is a code this table does not know yet.
	return codes.Unknown
}

// nodeErrorOf extracts the *nodeerr.Error to report for err, classifying
// plain errors; it never returns nil for a non-nil err.
func nodeErrorOf(err error) *nodeerr.Error {
	if ne := nodeerr.As(err); ne != nil {
		return ne
	}
	if ne := nodeerr.Classify(err, "", "", 0); ne != nil {
		return ne
	}
	return nodeerr.Wrap("ERR_GATEWAY_INTERNAL", err.Error(), err)
}

// notFound is the error for an unknown request id.
func notFound(id string) error {
	return gwError(codeRequestNotFound, "no live request with id "+strconv.Quote(id))
}

// unimplemented is the error for a feature that has not landed yet.
func unimplemented(what string) error {
	return gwError(codeUnimplemented, what+" is not implemented yet")
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }

// badArgument is the error for a malformed RPC message.
func badArgument(msg string) error { return gwError(codeBadArgument, msg) }

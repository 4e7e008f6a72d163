package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// headerFlags collects repeated -H 'Name: value' flags.
type headerFlags []*pb.Header

func (h *headerFlags) String() string { return "" }

func (h *headerFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q is not 'Name: value'", s)
	}
	*h = append(*h, &pb.Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	return nil
}

var redirectModes = map[string]pb.RedirectMode{
	"manual":   pb.RedirectMode_REDIRECT_MODE_MANUAL,
	"follow":   pb.RedirectMode_REDIRECT_MODE_FOLLOW,
	"error":    pb.RedirectMode_REDIRECT_MODE_ERROR,
	"deferred": pb.RedirectMode_REDIRECT_MODE_DEFERRED,
}

// fetchArgs are the parsed flags of `gateway fetch`.
type fetchArgs struct {
	addr, method, data, dataFile, agent, redirect, url string
	headers                                            headerFlags
	verbose                                            bool
	timeout                                            time.Duration
	maxBytes                                           int64
	conn                                               clientConn
}

// runFetch is the curl-like client of a running gateway: the response body
// goes to stdout; with -v every event goes to stderr, one line each. On
// failure it prints the Node code and the gRPC status and exits 1. Any HTTP
// status is a success, as with curl without -f.
func runFetch(ctx context.Context, io *stdio, args []string) int {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	fs.SetOutput(io.stderr)
	var a fetchArgs
	fs.StringVar(&a.addr, "addr", "", "gateway `host:port` (default: loopback and the port of GATEWAY_LISTEN / the config file, else 127.0.0.1:50051)")
	fs.StringVar(&a.method, "X", "", "request `method` (default GET)")
	fs.Var(&a.headers, "H", "request header `'Name: value'` (repeatable)")
	fs.StringVar(&a.data, "d", "", "request body `data`")
	fs.StringVar(&a.dataFile, "data-file", "", "read the request body from `file` (streamed with -v)")
	fs.BoolVar(&a.verbose, "v", false, "print every event to stderr (uses Exchange)")
	fs.StringVar(&a.agent, "agent", "", "agent `name` (default global)")
	fs.StringVar(&a.redirect, "redirect", "manual", "redirect `mode`: manual, follow, error or deferred")
	fs.DurationVar(&a.timeout, "timeout", 0, "bound the whole request (0: none)")
	fs.Int64Var(&a.maxBytes, "max-bytes", 0, "largest response body accepted without -v (0: the server's limit)")
	a.conn.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gateway fetch [flags] URL\n\n"+
			"The connection flags (--tls*, --token*) are also GATEWAY_CLIENT_<NAME> in the environment.\n\nflags:")
		fs.PrintDefaults()
	}
	// Flags may come before or after the URL, as with curl.
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		if a.url != "" {
			fmt.Fprintf(io.stderr, "fetch: unexpected argument %q\n", fs.Arg(0))
			return exitUsage
		}
		a.url, rest = fs.Arg(0), fs.Args()[1:]
	}
	if a.url == "" {
		fs.Usage()
		return exitUsage
	}
	if err := a.conn.applyEnv(fs, io.lookupEnv); err != nil {
		fmt.Fprintf(io.stderr, "fetch: %v\n", err)
		return exitUsage
	}
	if a.data != "" && a.dataFile != "" {
		fmt.Fprintln(io.stderr, "fetch: -d and --data-file exclude each other")
		return exitUsage
	}
	if _, ok := redirectModes[a.redirect]; !ok {
		fmt.Fprintf(io.stderr, "fetch: unknown --redirect %q (manual, follow, error, deferred)\n", a.redirect)
		return exitUsage
	}
	if a.addr == "" {
		var err error
		if a.addr, err = defaultHealthAddr(io.lookupEnv); err != nil {
			a.addr = "127.0.0.1:50051"
		}
	}
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	dopts, err := a.conn.dialOptions(a.addr)
	if err != nil {
		fmt.Fprintf(io.stderr, "fetch: %v\n", err)
		return exitUsage
	}
	cc, err := grpc.NewClient(a.addr, dopts...)
	if err != nil {
		fmt.Fprintf(io.stderr, "fetch: %v\n", err)
		return exitFailure
	}
	defer cc.Close()
	client := pb.NewClientRequestServiceClient(cc)
	if a.verbose {
		return fetchVerbose(ctx, io, client, &a)
	}
	return fetchPlain(ctx, io, client, &a)
}

func fetchPlain(ctx context.Context, io *stdio, client pb.ClientRequestServiceClient, a *fetchArgs) int {
	body := []byte(a.data)
	if a.dataFile != "" {
		var err error
		if body, err = os.ReadFile(a.dataFile); err != nil {
			fmt.Fprintf(io.stderr, "fetch: %v\n", err)
			return exitUsage
		}
	}
	r, err := client.Fetch(ctx, &pb.FetchRequest{
		Url: a.url, Method: a.method, Headers: a.headers, Agent: a.agent, Body: body,
		Options:          &pb.RequestOptions{Redirect: redirectModes[a.redirect]},
		MaxResponseBytes: a.maxBytes,
	})
	if err != nil {
		printStatus(io.stderr, err)
		return exitFailure
	}
	if _, err := io.stdout.Write(r.GetBody()); err != nil {
		fmt.Fprintf(io.stderr, "fetch: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// fetchVerbose drives the request over Exchange and prints every event.
func fetchVerbose(ctx context.Context, stdio *stdio, client pb.ClientRequestServiceClient, a *fetchArgs) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := client.Exchange(ctx)
	if err != nil {
		printStatus(stdio.stderr, err)
		return exitFailure
	}
	sendErr := make(chan error, 1)
	go func() { // sends the ops; ends after CloseSend or a failed Send
		sendErr <- sendOps(st, a)
	}()
	failed := false
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cancel()
			<-sendErr
			printStatus(stdio.stderr, err)
			return exitFailure
		}
		switch k := m.GetKind().(type) {
		case *pb.ExchangeResponse_Created:
			fmt.Fprintf(stdio.stderr, "* request %s %s %s\n", k.Created.GetRequestId(), k.Created.GetMethod(), k.Created.GetPath())
		case *pb.ExchangeResponse_OpRefused:
			fmt.Fprintf(stdio.stderr, "* refused op %d: %s: %s\n", k.OpRefused.GetOpIndex(), k.OpRefused.GetError().GetCode(), k.OpRefused.GetError().GetMessage())
		case *pb.ExchangeResponse_Event:
			if d := k.Event.GetData(); d != nil {
				_, _ = stdio.stdout.Write(d.GetChunk())
				continue
			}
			printEvent(stdio.stderr, k.Event)
			if k.Event.GetError() != nil {
				failed = true
			}
		}
	}
	if err := <-sendErr; err != nil {
		fmt.Fprintf(stdio.stderr, "fetch: %v\n", err)
		return exitFailure
	}
	if failed {
		return exitFailure
	}
	return exitOK
}

// sendOps sends start, the body and end, then half-closes.
func sendOps(st grpc.BidiStreamingClient[pb.ExchangeRequest, pb.ExchangeResponse], a *fetchArgs) error {
	start := &pb.RequestOptions{Url: a.url, Method: a.method, Headers: a.headers, Agent: a.agent, Redirect: redirectModes[a.redirect]}
	if err := st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: start}}); err != nil {
		return nil // the failure shows on Recv
	}
	if a.dataFile != "" {
		f, err := os.Open(a.dataFile)
		if err != nil {
			_ = st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Abort{Abort: &pb.AbortOp{}}})
			_ = st.CloseSend()
			return err
		}
		defer f.Close()
		for {
			buf := make([]byte, 64<<10)
			n, rerr := f.Read(buf)
			if n > 0 {
				if err := st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Write{Write: buf[:n]}}); err != nil {
					return nil
				}
			}
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				_ = st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Abort{Abort: &pb.AbortOp{}}})
				_ = st.CloseSend()
				return rerr
			}
		}
	}
	if err := st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{Data: []byte(a.data)}}}); err != nil {
		return nil
	}
	_ = st.CloseSend()
	return nil
}

// printEvent prints one event as a line (a head as several).
func printEvent(w io.Writer, e *pb.Event) {
	res := ""
	if e.GetTarget() == pb.EventTarget_EVENT_TARGET_RESPONSE {
		res = " (response)"
	}
	head := func(h *pb.ResponseHead) {
		for _, x := range h.GetRawHeaders() {
			fmt.Fprintf(w, "< %s: %s\n", x.GetName(), x.GetValue())
		}
	}
	switch k := e.GetKind().(type) {
	case *pb.Event_Socket:
		s := k.Socket
		fmt.Fprintf(w, "< socket reused=%t agent=%s name=%s\n", s.GetReused(), s.GetAgent(), s.GetSocket().GetName())
	case *pb.Event_Response:
		h := k.Response.GetHead()
		fmt.Fprintf(w, "< response %d %s HTTP/%s reused=%t\n", h.GetStatusCode(), h.GetStatusMessage(), h.GetHttpVersion(), k.Response.GetReusedSocket())
		head(h)
	case *pb.Event_Information:
		fmt.Fprintf(w, "< information %d %s\n", k.Information.GetHead().GetStatusCode(), k.Information.GetHead().GetStatusMessage())
		head(k.Information.GetHead())
	case *pb.Event_Upgrade:
		fmt.Fprintf(w, "< upgrade %d %s\n", k.Upgrade.GetHead().GetStatusCode(), k.Upgrade.GetHead().GetStatusMessage())
		head(k.Upgrade.GetHead())
	case *pb.Event_Connect:
		fmt.Fprintf(w, "< connect %d %s\n", k.Connect.GetHead().GetStatusCode(), k.Connect.GetHead().GetStatusMessage())
		head(k.Connect.GetHead())
	case *pb.Event_End:
		fmt.Fprintf(w, "< end bytes=%d\n", k.End.GetBodyBytes())
		for _, x := range k.End.GetRawTrailers() {
			fmt.Fprintf(w, "< trailer %s: %s\n", x.GetName(), x.GetValue())
		}
	case *pb.Event_Error:
		ne := k.Error.GetError()
		fmt.Fprintf(w, "< error%s %s: %s\n", res, ne.GetCode(), ne.GetMessage())
	case *pb.Event_Finish:
		fmt.Fprintf(w, "< finish bytes=%d\n", k.Finish.GetBodyBytes())
	case *pb.Event_Close:
		fmt.Fprintf(w, "< close%s\n", res)
	case *pb.Event_Abort:
		fmt.Fprintln(w, "< abort")
	case *pb.Event_Aborted:
		fmt.Fprintln(w, "< aborted")
	case *pb.Event_Timeout:
		fmt.Fprintln(w, "< timeout")
	case *pb.Event_ContinueEvent:
		fmt.Fprintln(w, "< continue")
	case *pb.Event_Redirect:
		fmt.Fprintf(w, "< redirect %d %s\n", k.Redirect.GetStatusCode(), k.Redirect.GetRedirectUrl())
	case *pb.Event_Login:
		fmt.Fprintf(w, "< login %s:%d\n", k.Login.GetHost(), k.Login.GetPort())
	}
}

// printStatus prints a failed RPC: the Node code (ErrorInfo reason), the
// gRPC status and the message.
func printStatus(w io.Writer, err error) {
	st := status.Convert(err)
	code := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			code = info.GetReason()
		}
	}
	if code == "" {
		code = "-"
	}
	fmt.Fprintf(w, "fetch: %s (gRPC %s): %s\n", code, st.Code(), st.Message())
}

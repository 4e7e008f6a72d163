// Package proxyenv is Node's proxyEnv agent option as a pure function: it
// parses the HTTP_PROXY, HTTPS_PROXY and NO_PROXY settings (and their
// lower-case forms) of one agent into a Config, and answers, for one
// request, which proxy to use and which NO_PROXY entry (if any) sent it
// direct.
//
// The precedence and the NO_PROXY forms are those of Node's current
// documentation ("Built-in Proxy Support" in the http module docs): the
// lower-case variable wins when both are set; NO_PROXY takes `*`, exact host
// names, `.suffix`, `*.suffix`, IP addresses, IP ranges `a-b` and
// `host:port`. CIDR blocks (`10.0.0.0/8`, `fd00::/8`) are accepted too, as
// Go's golang.org/x/net/http/httpproxy accepts them.
//
// The package does no I/O and no DNS: IP forms only match IP-literal hosts,
// as in Node, curl and Go. It must never import internal/agentpool or any
// layer above it.
package proxyenv

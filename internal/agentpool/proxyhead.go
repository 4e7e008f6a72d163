package agentpool

import (
	"bufio"
	"errors"
	"strings"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Bounds of a proxy's CONNECT response head: Node's default maximum header
// size, and a line count well above anything a proxy sends.
const (
	maxConnectHeadBytes = 16 << 10
	maxConnectHeaders   = 100
)

// connectResponse is what the pool needs of a CONNECT answer.
type connectResponse struct {
	code         int
	reason       string
	authenticate []string // Proxy-Authenticate values
}

// readConnectResponse reads one response head strictly: an HTTP/1.0 or 1.1
// status line with a three-digit code, header fields `token: value`, CRLF
// line ends, no obsolete line folding, no control characters, at most
// maxConnectHeadBytes and maxConnectHeaders. A malformed head is
// ERR_GATEWAY_PROXY_INVALID_RESPONSE; read errors are returned as they are.
// The body (a 407 may have one) is not read: the connection is closed on
// anything but a 2xx, which has no body.
func readConnectResponse(br *bufio.Reader) (connectResponse, error) {
	var res connectResponse
	total := 0
	line, err := readHeadLine(br, &total)
	if err != nil {
		return res, err
	}
	// status-line = HTTP-version SP status-code SP [ reason-phrase ]
	if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
		return res, invalidHead("bad status line")
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return res, invalidHead("bad status code")
		}
		res.code = res.code*10 + int(c-'0')
	}
	if res.code < 100 {
		return res, invalidHead("bad status code")
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return res, invalidHead("bad status line")
		}
		res.reason = line[13:]
	}
	for n := 0; ; n++ {
		line, err := readHeadLine(br, &total)
		if err != nil {
			return res, err
		}
		if line == "" {
			return res, nil
		}
		if n >= maxConnectHeaders {
			return res, invalidHead("too many header fields")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return res, invalidHead("bad header field")
		}
		if strings.EqualFold(name, "Proxy-Authenticate") {
			res.authenticate = append(res.authenticate, strings.Trim(value, " \t"))
		}
	}
}

var errHeadTooLarge = nodeerr.New(nodeerr.ERR_GATEWAY_PROXY_INVALID_RESPONSE, "proxy CONNECT response head too large")

func readHeadLine(br *bufio.Reader, total *int) (string, error) {
	line, err := br.ReadSlice('\n')
	*total += len(line)
	if *total > maxConnectHeadBytes || errors.Is(err, bufio.ErrBufferFull) {
		return "", errHeadTooLarge
	}
	if err != nil {
		return "", err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", invalidHead("line not terminated by CRLF")
	}
	line = line[:len(line)-2]
	for _, c := range line {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return "", invalidHead("control character in head")
		}
	}
	return string(line), nil
}

func invalidHead(what string) error {
	return nodeerr.New(nodeerr.ERR_GATEWAY_PROXY_INVALID_RESPONSE, "invalid proxy CONNECT response: "+what)
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ParseProxyAuthenticate picks the challenge to answer from
// Proxy-Authenticate values (RFC 9110 section 11.6.1: each value is a
// comma-separated list of challenges, `scheme [token68 | auth-param, ...]`)
// and returns its lower-case scheme and realm: the first Basic challenge,
// since Basic is what the gateway can answer, else the first challenge.
// The engine uses it for a 407 to an absolute-form request, which reaches
// it as a normal response.
func ParseProxyAuthenticate(values []string) (scheme, realm string) {
	type challenge struct{ scheme, realm string }
	var all []challenge
	for _, v := range values {
		for _, item := range splitQuoted(v) {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			// A new challenge starts with a token followed by space or
			// nothing; an auth-param is `name=value`.
			tok, rest, _ := strings.Cut(item, " ")
			if !strings.Contains(tok, "=") && isToken(tok) {
				all = append(all, challenge{scheme: strings.ToLower(tok)})
				item = strings.TrimSpace(rest)
				if item == "" {
					continue
				}
			}
			if len(all) == 0 {
				continue
			}
			name, val, ok := strings.Cut(item, "=")
			if ok && strings.EqualFold(strings.TrimSpace(name), "realm") {
				all[len(all)-1].realm = unquote(strings.TrimSpace(val))
			}
		}
	}
	for _, c := range all {
		if c.scheme == "basic" {
			return c.scheme, c.realm
		}
	}
	if len(all) > 0 {
		return all[0].scheme, all[0].realm
	}
	return "", ""
}

// splitQuoted splits s on commas outside quoted strings.
func splitQuoted(s string) []string {
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote undoes a quoted-string (quoted-pairs included); a token is
// returned as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

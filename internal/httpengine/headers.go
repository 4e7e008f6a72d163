package httpengine

import (
	"strings"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Header is one header line with its raw name casing.
type Header = wire.Header

// outHeader is one entry of the outgoing header map: Node's kOutHeaders
// stores [rawName, value] under the lower-cased name.
type outHeader struct {
	lower  string
	raw    string
	values []string
}

// OutgoingHeaders is Node's outgoing header map: case-insensitive lookup,
// raw name casing kept for the wire, insertion order kept (a JavaScript object
// keeps the position of a key that is set again; a removed key re-added goes
// last). It is not safe for concurrent use; ClientRequest guards it.
type OutgoingHeaders struct {
	entries []outHeader
}

func (h *OutgoingHeaders) index(lower string) int {
	for i := range h.entries {
		if h.entries[i].lower == lower {
			return i
		}
	}
	return -1
}

// validateHeader applies Node's validateHeaderName/validateHeaderValue.
func validateHeader(name string, values []string) error {
	if err := wire.ValidateHeaderName(name); err != nil {
		return err
	}
	if len(values) == 0 {
		return nodeerr.New(nodeerr.ERR_HTTP_INVALID_HEADER_VALUE,
			`Invalid value "undefined" for header "`+name+`"`)
	}
	for _, v := range values {
		if err := wire.ValidateHeaderValue(name, v); err != nil {
			return err
		}
	}
	return nil
}

// Set is setHeader(name, values): it replaces the header. Several values go
// out as several lines.
func (h *OutgoingHeaders) Set(name string, values ...string) error {
	if err := validateHeader(name, values); err != nil {
		return err
	}
	lower := strings.ToLower(name)
	vals := append([]string(nil), values...)
	if i := h.index(lower); i >= 0 {
		h.entries[i].raw, h.entries[i].values = name, vals
		return nil
	}
	h.entries = append(h.entries, outHeader{lower: lower, raw: name, values: vals})
	return nil
}

// Append is appendHeader(name, values): it adds values to the header,
// creating it if needed.
func (h *OutgoingHeaders) Append(name string, values ...string) error {
	if err := validateHeader(name, values); err != nil {
		return err
	}
	lower := strings.ToLower(name)
	if i := h.index(lower); i >= 0 {
		h.entries[i].values = append(h.entries[i].values, values...)
		return nil
	}
	h.entries = append(h.entries, outHeader{lower: lower, raw: name, values: append([]string(nil), values...)})
	return nil
}

// Get returns the values and raw name of a header, case-insensitively.
func (h *OutgoingHeaders) Get(name string) (values []string, raw string, ok bool) {
	if i := h.index(strings.ToLower(name)); i >= 0 {
		e := h.entries[i]
		return append([]string(nil), e.values...), e.raw, true
	}
	return nil, "", false
}

// Has reports whether the header is set.
func (h *OutgoingHeaders) Has(name string) bool { return h.index(strings.ToLower(name)) >= 0 }

// Remove deletes the header.
func (h *OutgoingHeaders) Remove(name string) {
	if i := h.index(strings.ToLower(name)); i >= 0 {
		h.entries = append(h.entries[:i], h.entries[i+1:]...)
	}
}

// Names returns the lower-cased names in order (getHeaderNames).
func (h *OutgoingHeaders) Names() []string {
	out := make([]string, len(h.entries))
	for i, e := range h.entries {
		out[i] = e.lower
	}
	return out
}

// RawNames returns the names as set, in order (getRawHeaderNames).
func (h *OutgoingHeaders) RawNames() []string {
	out := make([]string, len(h.entries))
	for i, e := range h.entries {
		out[i] = e.raw
	}
	return out
}

// HeaderValues is one entry of getHeaders(): a lower-cased name and its values.
type HeaderValues struct {
	Name   string
	Values []string
}

// All returns getHeaders() in order.
func (h *OutgoingHeaders) All() []HeaderValues {
	out := make([]HeaderValues, len(h.entries))
	for i, e := range h.entries {
		out[i] = HeaderValues{Name: e.lower, Values: append([]string(nil), e.values...)}
	}
	return out
}

// Lines returns the header lines as they go on the wire: raw names, one line
// per value, in order.
func (h *OutgoingHeaders) Lines() []Header {
	n := 0
	for _, e := range h.entries {
		n += len(e.values)
	}
	out := make([]Header, 0, n)
	for _, e := range h.entries {
		for _, v := range e.values {
			out = append(out, Header{Name: e.raw, Value: v})
		}
	}
	return out
}

// first returns the first value of a header, lower-case name given.
func (h *OutgoingHeaders) first(lower string) (string, bool) {
	if i := h.index(lower); i >= 0 && len(h.entries[i].values) > 0 {
		return h.entries[i].values[0], true
	}
	return "", false
}

package wire

import "strings"

// MergedHeader is one entry of Node's message.headers: a lower-cased name
// and what Node keeps of its lines.
type MergedHeader struct {
	// Name is the lower-cased field name.
	Name string
	// Values are the values Node keeps, in order: every line for set-cookie
	// (Node's array), only the first for the names whose duplicates Node
	// discards (unless joinDuplicates), every line otherwise.
	Values []string
	// Joined is the string Node's headers object holds: Values joined with
	// "; " for cookie and ", " otherwise. For set-cookie, which Node holds as
	// an array (IsArray), it is Values joined with ", " for convenience.
	Joined string
}

// IsArray reports whether Node's headers object holds this entry as an
// array of strings (only set-cookie) rather than a string.
func (m MergedHeader) IsArray() bool { return m.Name == "set-cookie" }

// mergeRule is what IncomingMessage._addHeaderLine does with a duplicate.
type mergeRule uint8

const (
	ruleJoinComma mergeRule = iota // ", "-delimited list
	ruleDiscard                    // first wins
	ruleArray                      // set-cookie
	ruleJoinSemi                   // cookie: "; "
)

// knownNames maps the lower-case names Node's matchKnownFields knows to
// their rule; the table also saves lower-casing allocations for them.
var knownNames = []struct {
	name string
	rule mergeRule
}{
	{"age", ruleDiscard}, {"authorization", ruleDiscard}, {"content-length", ruleDiscard},
	{"content-type", ruleDiscard}, {"etag", ruleDiscard}, {"expires", ruleDiscard},
	{"from", ruleDiscard}, {"host", ruleDiscard}, {"if-modified-since", ruleDiscard},
	{"if-unmodified-since", ruleDiscard}, {"last-modified", ruleDiscard}, {"location", ruleDiscard},
	{"max-forwards", ruleDiscard}, {"proxy-authorization", ruleDiscard}, {"referer", ruleDiscard},
	{"retry-after", ruleDiscard}, {"server", ruleDiscard}, {"user-agent", ruleDiscard},
	{"set-cookie", ruleArray}, {"cookie", ruleJoinSemi},
	// Common names with the default rule, only to avoid allocating.
	{"date", ruleJoinComma}, {"connection", ruleJoinComma}, {"keep-alive", ruleJoinComma},
	{"transfer-encoding", ruleJoinComma}, {"cache-control", ruleJoinComma}, {"vary", ruleJoinComma},
	{"content-encoding", ruleJoinComma}, {"accept-ranges", ruleJoinComma}, {"pragma", ruleJoinComma},
	{"access-control-allow-origin", ruleJoinComma}, {"x-powered-by", ruleJoinComma},
	{"strict-transport-security", ruleJoinComma}, {"content-security-policy", ruleJoinComma},
	{"x-content-type-options", ruleJoinComma}, {"x-frame-options", ruleJoinComma},
	{"upgrade", ruleJoinComma}, {"trailer", ruleJoinComma}, {"www-authenticate", ruleJoinComma},
	{"proxy-authenticate", ruleJoinComma}, {"link", ruleJoinComma}, {"via", ruleJoinComma},
}

// lowerName returns the lower-cased name and its merge rule, allocating only
// for unknown names that have upper-case letters.
func lowerName(name string) (string, mergeRule) {
	for _, k := range knownNames {
		if equalFoldASCII(name, k.name) {
			return k.name, k.rule
		}
	}
	if hasUpperASCII(name) {
		name = strings.ToLower(name)
	}
	return name, ruleJoinComma
}

// MergeHeaders builds Node's merged message.headers view from raw header
// lines, as IncomingMessage._addHeaderLine does: keys lower-cased, in order
// of first appearance; duplicates of age, authorization, content-length,
// content-type, etag, expires, from, host, if-modified-since,
// if-unmodified-since, last-modified, location, max-forwards,
// proxy-authorization, referer, retry-after, server and user-agent are
// discarded (first wins); set-cookie is always an array; cookie is joined
// with "; "; all others with ", ". joinDuplicates (Node's
// joinDuplicateHeaders) joins the discarded ones with ", " too; set-cookie
// and cookie keep their rules.
//
// Pass ResponseHead.RawHeaders[:HeadersCount] (or use ResponseHead.Merged)
// to apply maxHeadersCount as Node does.
func MergeHeaders(raw []Header, joinDuplicates bool) []MergedHeader {
	if len(raw) == 0 {
		return nil
	}
	type slot struct {
		name  string
		rule  mergeRule
		count int // values kept
		first int // index into vals
	}
	// Pass 1: unique names and how many values each keeps.
	slots := make([]slot, 0, len(raw))
	lineSlot := make([]int32, len(raw))
	var index map[string]int
	if len(raw) > 16 {
		index = make(map[string]int, len(raw))
	}
	for i, h := range raw {
		name, rule := lowerName(h.Name)
		j := -1
		if index != nil {
			if k, ok := index[name]; ok {
				j = k
			}
		} else {
			for k := range slots {
				if slots[k].name == name {
					j = k
					break
				}
			}
		}
		if j < 0 {
			j = len(slots)
			slots = append(slots, slot{name: name, rule: rule})
			if index != nil {
				index[name] = j
			}
		}
		lineSlot[i] = int32(j)
		if slots[j].count == 0 || rule != ruleDiscard || joinDuplicates {
			slots[j].count++
		} else {
			lineSlot[i] = -1 // discarded
		}
	}
	// Pass 2: all kept values in one backing array, grouped by name.
	off := 0
	for k := range slots {
		slots[k].first = off
		off += slots[k].count
	}
	vals := make([]string, off)
	fill := make([]int, len(slots))
	for i, h := range raw {
		j := lineSlot[i]
		if j < 0 {
			continue
		}
		vals[slots[j].first+fill[j]] = h.Value
		fill[j]++
	}
	out := make([]MergedHeader, len(slots))
	for k, s := range slots {
		v := vals[s.first : s.first+s.count : s.first+s.count]
		sep := ", "
		if s.rule == ruleJoinSemi {
			sep = "; "
		}
		joined := v[0]
		if len(v) > 1 {
			joined = strings.Join(v, sep)
		}
		out[k] = MergedHeader{Name: s.name, Values: v, Joined: joined}
	}
	return out
}

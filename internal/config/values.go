package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"
)

// value is a flag.Value bound to one Config field. Set parses text from any
// layer; logValue is what the start-up log shows.
type value interface {
	flag.Value
	logValue() slog.Value
}

type stringValue string

func (v *stringValue) Set(s string) error   { *v = stringValue(s); return nil }
func (v *stringValue) String() string       { return string(*v) }
func (v *stringValue) logValue() slog.Value { return slog.StringValue(string(*v)) }

// listValue is a comma-separated list; blanks around items and empty items
// are dropped, so "a, b," is [a b] and "" is the empty list.
type listValue []string

func (v *listValue) Set(s string) error {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*v = out
	return nil
}
func (v *listValue) String() string { return strings.Join(*v, ",") }
func (v *listValue) logValue() slog.Value {
	return slog.AnyValue(append([]string{}, *v...)) // [] rather than null in JSON
}

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		// time's message repeats the input; keep ours short and say the form.
		return fmt.Errorf("invalid duration %q (want e.g. 500ms, 10s, 5m)", s)
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string       { return time.Duration(*v).String() }
func (v *durationValue) logValue() slog.Value { return slog.StringValue(v.String()) }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid integer %q", s)
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string       { return strconv.Itoa(int(*v)) }
func (v *intValue) logValue() slog.Value { return slog.IntValue(int(*v)) }

type uint32Value uint32

func (v *uint32Value) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return fmt.Errorf("invalid count %q (want 0..%d)", s, uint32(math.MaxUint32))
	}
	*v = uint32Value(n)
	return nil
}
func (v *uint32Value) String() string       { return strconv.FormatUint(uint64(*v), 10) }
func (v *uint32Value) logValue() slog.Value { return slog.Uint64Value(uint64(*v)) }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid boolean %q (want true or false)", s)
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string       { return strconv.FormatBool(bool(*v)) }
func (v *boolValue) logValue() slog.Value { return slog.BoolValue(bool(*v)) }

// IsBoolFlag lets "--keepalive-permit-without-stream" stand alone on the
// command line, as the flag package does for its own bools.
func (v *boolValue) IsBoolFlag() bool { return true }

type levelValue slog.Level

func (v *levelValue) Set(s string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return fmt.Errorf("invalid log level %q (want debug, info, warn or error)", s)
	}
	*v = levelValue(l)
	return nil
}
func (v *levelValue) String() string       { return strings.ToLower(slog.Level(*v).String()) }
func (v *levelValue) logValue() slog.Value { return slog.StringValue(v.String()) }

// bytesValue is a size in bytes, written plain or with a binary suffix
// (KiB, MiB, GiB), because "16MiB" is easier to review than 16777216.
type bytesValue int

var byteUnits = []struct {
	suffix string
	n      int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

func (v *bytesValue) Set(s string) error {
	n, err := parseBytes(s, math.MaxInt32)
	if err != nil {
		return fmt.Errorf("invalid size %q (want bytes, e.g. 4194304 or 4MiB, below 2GiB)", s)
	}
	*v = bytesValue(n)
	return nil
}

func (v *bytesValue) String() string       { return formatBytes(int64(*v)) }
func (v *bytesValue) logValue() slog.Value { return slog.StringValue(v.String()) }

// size64Value is bytesValue for sizes that may pass 2 GiB (request and
// response bodies, tunnels); it also takes TiB.
type size64Value int64

func (v *size64Value) Set(s string) error {
	n, err := parseBytes(s, math.MaxInt64)
	if err != nil {
		return fmt.Errorf("invalid size %q (want bytes, e.g. 1048576 or 1MiB)", s)
	}
	*v = size64Value(n)
	return nil
}

func (v *size64Value) String() string       { return formatBytes(int64(*v)) }
func (v *size64Value) logValue() slog.Value { return slog.StringValue(v.String()) }

// parseBytes parses a size with an optional binary suffix, within
// [-limit, limit].
func parseBytes(s string, limit int64) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err == nil && (n > limit/mult || n < -limit/mult) {
		err = errors.New("out of range")
	}
	if err != nil {
		return 0, err
	}
	return n * mult, nil
}

// formatBytes writes n with the largest suffix that divides it.
func formatBytes(n int64) string {
	for _, u := range byteUnits {
		if n != 0 && n%u.n == 0 && u.n > 1 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

package config

import (
	"flag"
	"fmt"
	"strings"
)

// UsageError is a command line the flag package rejected (including -h,
// where Err is flag.ErrHelp). The flag package has already printed the
// problem and the usage to the FlagSet's output, so callers need not repeat it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Load registers every configuration flag on fs, parses args, and returns
// the configuration layered as flags > GATEWAY_* environment > config file >
// defaults, validated. The config file is the one named by --config, else by
// GATEWAY_CONFIG; none is read when neither is set.
//
// lookupEnv is os.LookupEnv in production; tests pass their own so they never
// touch the process environment. A variable that is set but empty counts as
// set: GATEWAY_ADMIN_LISTEN= turns off an admin listener the file enabled.
//
// Positional arguments are left in fs.Args for the caller to judge.
func Load(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	flags := registerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, &UsageError{Err: err}
	}

	cfg := Default()
	path, _ := lookupEnv(fieldByName("config").envName())
	if r := flags["config"]; r != nil && len(r.raw) > 0 {
		path = r.text()
	}
	if path != "" {
		if err := loadFile(&cfg, path); err != nil {
			return Config{}, err
		}
	}
	if err := applyEnv(&cfg, lookupEnv); err != nil {
		return Config{}, err
	}
	for _, f := range fields {
		if r := flags[f.name]; r != nil && len(r.raw) > 0 {
			// Cannot fail: flagRecorder.Set already parsed the same text.
			if err := f.bind(&cfg).Set(r.text()); err != nil {
				return Config{}, fmt.Errorf("--%s: %w", f.name, err)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func applyEnv(cfg *Config, lookupEnv func(string) (string, bool)) error {
	for _, f := range fields {
		s, ok := lookupEnv(f.envName())
		if !ok {
			continue
		}
		if err := f.bind(cfg).Set(s); err != nil {
			if f.secret {
				return fmt.Errorf("environment %s: invalid value", f.envName())
			}
			return fmt.Errorf("environment %s: %w", f.envName(), err)
		}
	}
	return nil
}

// flagRecorder stands in for a field on the FlagSet. Flags are applied last,
// after the file and the environment, but only those actually given; so the
// recorder keeps the raw text and applies it once the lower layers are in.
type flagRecorder struct {
	f   *field
	def string
	raw []string
}

func registerFlags(fs *flag.FlagSet) map[string]*flagRecorder {
	def := Default()
	out := make(map[string]*flagRecorder, len(fields))
	for _, f := range fields {
		if !f.isFlag() {
			continue
		}
		r := &flagRecorder{f: f, def: f.bind(&def).String()}
		out[f.name] = r
		fs.Var(r, f.name, f.usage)
	}
	return out
}

// Set parses s into a scratch Config at once, so a bad value is reported by
// the flag package naming the flag ("invalid value ... for flag -listen").
func (r *flagRecorder) Set(s string) error {
	var scratch Config
	if err := r.f.bind(&scratch).Set(s); err != nil {
		return err
	}
	r.raw = append(r.raw, s)
	return nil
}

// String returns the default for usage output. The flag package also calls
// it on a zero recorder to detect zero defaults, hence the nil checks.
func (r *flagRecorder) String() string {
	if r == nil || r.f == nil {
		return ""
	}
	return r.def
}

// IsBoolFlag lets boolean settings be given without "=true".
func (r *flagRecorder) IsBoolFlag() bool {
	if r == nil || r.f == nil {
		return false
	}
	var scratch Config
	b, ok := r.f.bind(&scratch).(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// text is what the flag layer sets: a repeated list flag accumulates
// (--egress-allow a --egress-allow b), any other repeated flag keeps the last.
func (r *flagRecorder) text() string {
	var scratch Config
	if _, isList := r.f.bind(&scratch).(*listValue); isList {
		return strings.Join(r.raw, ",")
	}
	return r.raw[len(r.raw)-1]
}

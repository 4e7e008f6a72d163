package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// buildInfo is what the binary knows about its own build.
type buildInfo struct {
	module, version, goVersion string
	revision, time             string
	modified                   bool
}

// readBuildInfo reads the module version Go stamps from VCS tags (or
// "(devel)") and the vcs.* settings of a build from a checkout.
func readBuildInfo() buildInfo {
	b := buildInfo{version: "(unknown)", goVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.module = bi.Main.Path
	if bi.Main.Version != "" {
		b.version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

func runVersion(_ context.Context, io *stdio, args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(io.stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	b := readBuildInfo()
	fmt.Fprintf(io.stdout, "gateway %s\n", b.version)
	if b.module != "" {
		fmt.Fprintf(io.stdout, "module   %s\n", b.module)
	}
	fmt.Fprintf(io.stdout, "go       %s %s/%s\n", b.goVersion, runtime.GOOS, runtime.GOARCH)
	if b.revision != "" {
		dirty := ""
		if b.modified {
			dirty = " (modified)"
		}
		fmt.Fprintf(io.stdout, "revision %s%s\n", b.revision, dirty)
	}
	if b.time != "" {
		fmt.Fprintf(io.stdout, "time     %s\n", b.time)
	}
	return exitOK
}

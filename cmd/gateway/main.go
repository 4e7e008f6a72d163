package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// stdio is what a subcommand may touch of the process, so tests can run
// subcommands in-process with their own streams and environment.
type stdio struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

func main() {
	// The first SIGINT/SIGTERM starts the drain; stopping the notification
	// then restores the default action, so a second signal ends the process
	// at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	tuneGC(os.LookupEnv)
	code := run(ctx, os.Args[1:], &stdio{stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv})
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the exit code. With no
// subcommand, or flags first (`gateway --listen :8080`), it serves.
func run(ctx context.Context, args []string, io *stdio) int {
	name := "serve"
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		usage(io.stdout)
		return 0
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		name, args = args[0], args[1:]
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(io.stderr, "gateway: unknown command %q\n\n", name)
		usage(io.stderr)
		return exitUsage
	}
	return cmd.run(ctx, io, args)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gateway [command] [flags]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nWith no command, gateway serves. `gateway COMMAND -h` lists a command's flags.")
}

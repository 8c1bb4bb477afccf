// Command torrentfs is a BitTorrent client whose face is a file system. This package is the
// command line only: it parses flags, configures logging and wires the other packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// command is one subcommand. Each lives in its own file and registers itself in init.
type command struct {
	name  string
	args  string // synopsis after the flags, e.g. "FILE|MAGNET"
	short string // one line for the command list
	long  string // paragraph for `torrentfs CMD --help`
	// setup declares the command's flags on fs and returns the function that runs it with
	// the positional arguments.
	setup func(fs *flag.FlagSet) func(args []string) error
}

var commands = map[string]*command{}

// cmdStdout is where commands print their results; run sets it. Their errors and logs go to
// their flag set's Output(), which is run's stderr.
var cmdStdout io.Writer = os.Stdout

func register(c *command) { commands[c.name] = c }

// usageError makes main exit with status 2 and print the command's usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// The heap is mostly short-lived block buffers; a soft limit makes the collector
		// return them sooner instead of letting the heap double between collections. It
		// is soft: past it the collector works harder, nothing fails.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if len(os.Args) > 1 {
		adaptProcs(os.Args[1], os.Getenv) // GOMAXPROCS follows the process's CPU use (procs.go)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// defaultMemoryLimit is the soft heap limit unless GOMEMLIMIT says otherwise.
const defaultMemoryLimit = 32 << 20

func run(argv []string, stdout, stderr io.Writer) int {
	cmdStdout = stdout
	if len(argv) == 0 {
		topUsage(stderr)
		return exitUsage
	}
	name := argv[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(argv) > 1 {
			if c, ok := commands[argv[1]]; ok {
				fs := newFlagSet(c, stdout)
				c.setup(fs)
				fs.Usage()
				return exitOK
			}
		}
		topUsage(stdout)
		return exitOK
	case "version", "--version":
		fmt.Fprintln(stdout, "torrentfs", version)
		return exitOK
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "torrentfs: unknown command %q\n\n", name)
		topUsage(stderr)
		return exitUsage
	}
	fs := newFlagSet(c, stderr)
	logLevel := fs.String("log-level", "info", "log level: panic, fatal, error, warn, info, debug or trace")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `FILE` (for go tool pprof)")
	runFn := c.setup(fs)
	if wantsHelp(argv[1:]) {
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK
	}
	args, err := parseInterleaved(fs, argv[1:])
	if err != nil {
		return exitUsage // flag already printed the error and usage
	}
	lvl, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "torrentfs %s: --log-level: %v\n", name, err)
		return exitUsage
	}
	logrus.SetLevel(lvl)
	logrus.SetOutput(stderr)
	// Millisecond times: a seek or a first byte is read from the log in milliseconds.
	logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "2006-01-02T15:04:05.000Z07:00"})
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "torrentfs %s: %v\n", name, err)
			return exitRuntime
		}
		defer stop()
	}
	if err := runFn(args); err != nil {
		if errors.Is(err, context.Canceled) {
			return exitOK // the user interrupted a step that had nothing to undo
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "torrentfs %s: %v\n", name, ue.msg)
			fs.Usage()
			return exitUsage
		}
		fmt.Fprintf(stderr, "torrentfs %s: %v\n", name, err)
		return exitRuntime
	}
	return exitOK
}

var version = "dev"

func newFlagSet(c *command, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: torrentfs %s [flags] %s\n\n", c.name, c.args)
		if c.long != "" {
			fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.long))
		}
		fmt.Fprintln(w, "flags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseInterleaved lets flags come after positional arguments too
// (`torrentfs create dir -o x.torrent`); "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, argv []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(argv); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first non-flag, or just after a "--".
		consumed := len(argv) - len(rest)
		if consumed > 0 && argv[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		argv = rest[1:]
	}
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, "torrentfs: a BitTorrent client whose face is a file system")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage: torrentfs COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].short)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run `torrentfs COMMAND --help` for a command's flags.")
}

// wantsHelp tells whether a help flag comes before any "--".
func wantsHelp(argv []string) bool {
	for _, a := range argv {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// startCPUProfile profiles the command until the returned function runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// Package cli is gaffer's command line: the commands, their flags and GAFFER_* variables, the
// `gaffer [flags] -- CMD` form, and the client commands that talk to a running gaffer.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	pid1 "gaffer/init"
	"gaffer/relay"
	"gaffer/sdnotify"

	"github.com/urfave/cli/v2"
)

// usageError is a mistake in how gaffer was called: exit 2 before anything is started.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// onUsage is every command's OnUsageError: a flag urfave/cli could not parse is a usage error.
func onUsage(_ *cli.Context, err error, _ bool) error { return usageError{err} }

// exitCode is an error that carries the code gaffer exits with.
type exitCode struct {
	code int
	err  error // nil: exit silently with code
}

func (e exitCode) Error() string {
	if e.err == nil {
		return "exit " + strconv.Itoa(e.code)
	}
	return e.err.Error()
}

// Signals is what main did about signals before anything else: run and up need it, the other
// commands do not.
type Signals struct {
	C          <-chan os.Signal // the Early signals, and the Late ones once NotifyLate ran
	NotifyLate func()
}

// RunsInit reports whether args (os.Args) name a command that runs an init, run (also in the
// `gaffer [flags] -- CMD` form) or up: main must then notify signals.Early before anything else.
func RunsInit(args []string) bool {
	args = normalizeArgs(args)
	return len(args) > 1 && (args[1] == "run" || args[1] == "up")
}

// normalizeArgs turns `gaffer [flags] -- CMD` into `gaffer run [flags] -- CMD`, so that the command
// after -- is never taken for one of gaffer's own commands. A first argument that is not a flag
// names a command (the app refuses one it does not know); gaffer's own --help and --version stay
// where they are.
func normalizeArgs(in []string) []string {
	if len(in) < 2 || !strings.HasPrefix(in[1], "-") {
		return in
	}
	switch in[1] {
	case "--help", "-h", "--version":
		return in
	}
	return append([]string{in[0], "run"}, in[1:]...)
}

// Run runs gaffer with args (os.Args) and returns the code to exit with. version is what
// --version prints and the API reports; sigs must be set when RunsInit(args); stderr gets
// gaffer's own messages, one line each, never blocking for long.
func Run(args []string, version string, sigs Signals, stderr io.Writer) int {
	if len(args) > 1 && args[1] == sdnotify.ExecCommand {
		return runShim(args[2:], stderr) // a child of gaffer up on its way to its command (shim.go)
	}
	d := newDiag(stderr)
	// gaffer's own lines wait for a stuck stderr only this long at exit (DESIGN rule 10).
	defer d.Flush(diagFlush)
	args = normalizeArgs(args)
	app := newApp(version, sigs, d)
	app.Commands = only(app.Commands, args)
	cacheNames(app.Commands)
	err := app.Run(args)
	if err == nil {
		return 0
	}
	var ec exitCode
	if errors.As(err, &ec) {
		if ec.err != nil {
			fmt.Fprintf(d, "gaffer: %v\n", ec.err)
		}
		return ec.code
	}
	fmt.Fprintf(d, "gaffer: %v\n", err)
	return 2
}

// diagFlush bounds how long gaffer waits at exit for its own last lines to reach stderr.
const diagFlush = 500 * time.Millisecond

// diag is gaffer's own stderr: each Write is queued whole as lines and written by another
// goroutine, so that a stderr nobody reads never blocks the loop that reaps (DESIGN rule 10).
// What cannot be queued is dropped and counted.
type diag struct{ *relay.Writer }

func newDiag(w io.Writer) diag { return diag{relay.NewWriter(w, relay.Options{Format: relay.Raw})} }

// Write queues p as lines; it never blocks for long.
func (d diag) Write(p []byte) (int, error) {
	d.Event("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newApp builds the app; it sets urfave/cli's VersionFlag and VersionPrinter, which v2 has only as
// package variables, to the same values every time.
func newApp(version string, sigs Signals, stderr io.Writer) *cli.App {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintf(c.App.Writer, "gaffer %s\n", c.App.Version) }
	app := &cli.App{
		Name:    "gaffer",
		Usage:   "an init for containers: reap, forward signals, stop the tree, switch user",
		Version: version,
		UsageText: "gaffer [run flags] -- CMD [ARG...]\n" +
			"gaffer exec [--user SPEC] [--cwd DIR] [--env K=V]... [--clear-env] -- CMD [ARG...]",
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		ErrWriter:                 stderr,
		OnUsageError:              onUsage,
		ExitErrHandler:            func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown command %q: to run a program, put it after --: gaffer -- %s", c.Args().First(), strings.Join(c.Args().Slice(), " "))
			}
			return usagef("no command given: gaffer -- CMD [ARG...] (see gaffer --help)")
		},
		Commands: append([]*cli.Command{
			runCommand(version, sigs, stderr),
			execCommand(),
			upCommand(version, sigs, stderr),
			checkCommand(),
		}, clientCommands()...),
	}
	return app
}

// only returns the command args (normalized os.Args) name, when there is one, as the only
// command: urfave/cli sets up every command of the app and their flags before it runs one (a
// fifth of the allocations of a `gaffer run` command line). Without a known command (help, a
// typo, no command) it returns cmds.
func only(cmds []*cli.Command, args []string) []*cli.Command {
	if len(args) < 2 {
		return cmds
	}
	for _, c := range cmds {
		if c.HasName(args[1]) {
			return []*cli.Command{c}
		}
	}
	return cmds
}

// logTo makes a pid1.Logf that writes "gaffer: " lines to w.
func logTo(w io.Writer) pid1.Logf {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "gaffer: "+format+"\n", args...)
	}
}

// Command gaffer is an init for containers: PID 1 that reaps zombies, forwards signals and stops the
// whole tree (gaffer -- CMD), and an exec wrapper that switches identity (gaffer exec).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	pid1 "gaffer/init"
	"gaffer/reaper"
	"gaffer/relay"
	"gaffer/signals"
	"gaffer/spawn"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError is a mistake in how gaffer was called: exit 2 before anything is started.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

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

func main() {
	args := normalizeArgs(os.Args)
	var setup signalSetup
	if len(args) > 1 && (args[1] == "run" || args[1] == "up") {
		// First thing, before anything can go wrong: a Go PID 1 that receives a signal it has not
		// asked for exits with status 2. The buffer is large because Notify drops when it is full.
		sigs := make(chan os.Signal, 1024)
		signal.Notify(sigs, signals.Early()...)
		setup = signalSetup{ch: sigs, notifyLate: func() { signal.Notify(sigs, signals.Late()...) }}
	}
	os.Exit(runCLI(args, setup, os.Stderr))
}

// signalSetup is what main did about signals before anything else.
type signalSetup struct {
	ch         <-chan os.Signal // the Early signals, and the Late ones once notifyLate ran
	notifyLate func()
}

// commandNames are gaffer's subcommands; anything else in first position is a mistake, and a first
// argument that is a flag or "--" means the run command.
var commandNames = []string{"run", "exec", "up", "check", "help", "h",
	"status", "stats", "signal", "start", "stop", "restart", "logs", "send", "scale", "events", "shutdown", "health"}

// normalizeArgs turns `gaffer [flags] -- CMD` into `gaffer run [flags] -- CMD`, so that the command
// after -- is never taken for one of gaffer's own commands.
func normalizeArgs(in []string) []string {
	if len(in) < 2 {
		return in
	}
	first := in[1]
	switch first {
	case "--help", "-h", "--version":
		return in
	}
	for _, c := range commandNames {
		if first == c {
			return in
		}
	}
	if strings.HasPrefix(first, "-") {
		return append([]string{in[0], "run"}, in[1:]...)
	}
	return in
}

func runCLI(args []string, sigs signalSetup, stderr io.Writer) int {
	d := newDiag(stderr)
	// gaffer's own lines wait for a stuck stderr only this long at exit (DESIGN rule 10).
	defer d.Flush(diagFlush)
	app := newApp(sigs, d)
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

func newApp(sigs signalSetup, stderr io.Writer) *cli.App {
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintf(c.App.Writer, "gaffer %s\n", c.App.Version) }
	onUsage := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
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
			runCommand(sigs, stderr, onUsage),
			execCommand(onUsage),
			upCommand(sigs, stderr, onUsage),
			checkCommand(onUsage),
		}, clientCommands(onUsage)...),
	}
	return app
}

// identityFlags are shared by run and exec: who the child is, where, and with what environment.
func identityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, EnvVars: []string{"GAFFER_USER"}, Usage: "run as `SPEC`: user, uid, user:group, uid:gid or :group"},
		&cli.StringFlag{Name: "cwd", EnvVars: []string{"GAFFER_CWD"}, Usage: "working directory `DIR` of the command"},
		&cli.StringSliceFlag{Name: "env", EnvVars: []string{"GAFFER_ENV"}, Usage: "set `K=V` in the command's environment (repeatable)"},
		&cli.BoolFlag{Name: "clear-env", EnvVars: []string{"GAFFER_CLEAR_ENV"}, Usage: "start the command with an empty environment"},
	}
}

// childSpec builds the child from the shared identity flags; every mistake is a usage error.
func childSpec(c *cli.Context) (spawn.Spec, error) {
	argv := c.Args().Slice()
	if len(argv) == 0 {
		return spawn.Spec{}, usagef("no command given: put it after --, e.g. gaffer %s -- CMD [ARG...]", c.Command.Name)
	}
	s := spawn.Spec{Name: argv[0], Argv: argv, Dir: c.String("cwd")}
	if s.Dir != "" {
		st, err := os.Stat(s.Dir)
		if err != nil || !st.IsDir() {
			return s, usagef("--cwd %s: not a directory", s.Dir)
		}
	}
	// IsSet, not a test for "": --user "" and GAFFER_USER= (urfave/cli counts a variable set to
	// the empty string as set) ran the command as root.
	if c.IsSet("user") {
		spec := c.String("user")
		if spec == "" {
			return s, usagef("empty --user (or GAFFER_USER): want user, uid, user:group, uid:gid or :group; leave it out to keep gaffer's own")
		}
		id, err := spawn.SystemUsers().Lookup(spec)
		if err != nil {
			return s, usagef("--user %s: %v", spec, err)
		}
		s.Identity = &id
	}
	sets := c.StringSlice("env")
	for _, kv := range sets {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return s, usagef("--env %q: want K=V", kv)
		}
	}
	var base []string
	if !c.Bool("clear-env") {
		base = os.Environ()
	}
	s.Env = spawn.Environ(base, s.Identity, sets)
	return s, nil
}

func runCommand(sigs signalSetup, stderr io.Writer, onUsage cli.OnUsageErrorFunc) *cli.Command {
	var verbose int
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "group", Aliases: []string{"g"}, EnvVars: []string{"GAFFER_GROUP"}, Usage: "forward signals to the child's whole process group"},
		&cli.StringSliceFlag{Name: "rewrite", Aliases: []string{"r"}, EnvVars: []string{"GAFFER_REWRITE"}, Usage: "forward signal `FROM:TO` instead (names or numbers; TO 0 drops it; repeatable)"},
		&cli.StringSliceFlag{Name: "success-exit", Aliases: []string{"e"}, EnvVars: []string{"GAFFER_SUCCESS_EXIT"}, Usage: "report child exit code `N` as 0 (repeatable)"},
		&cli.StringFlag{Name: "grace", EnvVars: []string{"GAFFER_GRACE"}, Value: "5s", Usage: "`DURATION` between SIGTERM and SIGKILL for processes left behind"},
		&cli.StringFlag{Name: "stop-timeout", EnvVars: []string{"GAFFER_STOP_TIMEOUT"}, Value: "0", Usage: "SIGKILL the child's group `DURATION` after a forwarded TERM/INT/QUIT (0: never)"},
		&cli.StringFlag{Name: "pdeathsig", Aliases: []string{"p"}, EnvVars: []string{"GAFFER_PDEATHSIG"}, Usage: "gaffer receives `SIG` when its parent dies"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Count: &verbose, Usage: "print gaffer's own diagnostics (also GAFFER_LOG=debug)"},
	}
	return &cli.Command{
		Name:         "run",
		Usage:        "run CMD as the init's child (the default: gaffer -- CMD)",
		UsageText:    "gaffer [run] [flags] -- CMD [ARG...]",
		Flags:        append(append(flags, identityFlags()...), socketFlags()...),
		OnUsageError: onUsage,
		Action: func(c *cli.Context) error {
			cfg, err := runConfig(c, sigs)
			if err != nil {
				return err
			}
			plan, err := planSocket(c, nil, reaper.IsPID1(), false)
			if err != nil {
				return err
			}
			defer plan.close()
			cfg.Serve = plan.serve(cfg.Warnf)
			if verbose > 0 || strings.EqualFold(os.Getenv("GAFFER_LOG"), "debug") {
				cfg.Debugf = logTo(stderr)
				cfg.Debugf("%s", cfg.Describe())
			}
			if sig := c.String("pdeathsig"); sig != "" {
				s, _ := signals.Parse(sig)
				if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(s), 0, 0, 0); err != nil {
					cfg.Warnf("--pdeathsig: %v", err)
				}
			}
			// The child keeps the directory gaffer was started in; gaffer itself keeps none busy.
			wd, _ := os.Getwd()
			if cfg.Child.Dir == "" {
				cfg.Child.Dir = wd
			} else if !filepath.IsAbs(cfg.Child.Dir) {
				cfg.Child.Dir = filepath.Join(wd, cfg.Child.Dir)
			}
			becomeInit(cfg.Warnf, cfg.Debugf)
			code, err := pid1.Run(context.Background(), cfg)
			return exitCode{code: code, err: err}
		},
	}
}

// becomeInit does to gaffer's own process what an init needs before it starts children: orphans
// of its tree come to it (the subreaper bit, when it is not PID 1), and it keeps no directory
// busy.
func becomeInit(warnf, debugf pid1.Logf) {
	if !reaper.IsPID1() {
		if err := reaper.SetSubreaper(); err != nil {
			warnf("not PID 1 and %v: orphans will not be reaped by gaffer", err)
		}
	}
	if err := os.Chdir("/"); err != nil && debugf != nil {
		debugf("chdir /: %v", err)
	}
}

func runConfig(c *cli.Context, sigs signalSetup) (pid1.Config, error) {
	cfg := pid1.Config{Signals: sigs.ch, NotifyLate: sigs.notifyLate, Group: c.Bool("group"), Warnf: logTo(c.App.ErrWriter)}
	var err error
	if cfg.Rewrites, err = signals.ParseRewrites(c.StringSlice("rewrite")); err != nil {
		return cfg, usagef("--rewrite: %v", err)
	}
	for _, spec := range c.StringSlice("success-exit") {
		for _, s := range strings.Split(spec, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 0 || n > 255 {
				return cfg, usagef("--success-exit %q: want an exit code 0-255", s)
			}
			cfg.SuccessCodes = append(cfg.SuccessCodes, n)
		}
	}
	if cfg.Grace, err = parseDuration(c.String("grace")); err != nil {
		return cfg, usagef("--grace: %v", err)
	}
	if cfg.StopTimeout, err = parseDuration(c.String("stop-timeout")); err != nil {
		return cfg, usagef("--stop-timeout: %v", err)
	}
	if sig := c.String("pdeathsig"); sig != "" {
		if _, err := signals.Parse(sig); err != nil {
			return cfg, usagef("--pdeathsig: %v", err)
		}
	}
	if cfg.Child, err = childSpec(c); err != nil {
		return cfg, err
	}
	cfg.Child.Stdin, cfg.Child.Stdout, cfg.Child.Stderr = os.Stdin, os.Stdout, os.Stderr
	cfg.Child.Foreground = spawn.ForegroundTTY(os.Stdin)
	if sigs.ch == nil {
		return cfg, fmt.Errorf("internal: signals were not set up")
	}
	return cfg, nil
}

// parseDuration takes Go durations ("1m30s", "250ms") and plain seconds ("10", "0.5").
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		switch {
		case math.IsNaN(f) || math.IsInf(f, 0):
			return 0, fmt.Errorf("bad duration %q: want e.g. 10s, 500ms or 2m", s)
		case f < 0:
			return 0, fmt.Errorf("negative duration %q", s)
		case f > float64(math.MaxInt64)/float64(time.Second):
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want e.g. 10s, 500ms or 2m", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

func execCommand(onUsage cli.OnUsageErrorFunc) *cli.Command {
	return &cli.Command{
		Name:         "exec",
		Usage:        "switch user, directory and environment, then exec CMD (like gosu); nothing stays resident",
		UsageText:    "gaffer exec [--user SPEC] [--cwd DIR] [--env K=V]... [--clear-env] -- CMD [ARG...]",
		Flags:        identityFlags(),
		OnUsageError: onUsage,
		Action: func(c *cli.Context) error {
			s, err := childSpec(c)
			if err != nil {
				return err
			}
			return execSpec(s)
		},
	}
}

// execSpec becomes the command: the only place gaffer changes its own credentials, right before
// execve replaces it. The command is looked up after the switch, as gosu does: looked up as root,
// a root-only file early in PATH hid the one the user may run (126 where a shell runs it).
func execSpec(s spawn.Spec) error {
	if id := s.Identity; id != nil {
		groups := make([]int, len(id.Groups))
		for i, g := range id.Groups {
			groups[i] = int(g)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return exitCode{code: 1, err: fmt.Errorf("setgroups %v: %w", id.Groups, err)}
		}
		if err := syscall.Setgid(int(id.GID)); err != nil {
			return exitCode{code: 1, err: fmt.Errorf("setgid %d: %w", id.GID, err)}
		}
		if err := syscall.Setuid(int(id.UID)); err != nil {
			return exitCode{code: 1, err: fmt.Errorf("setuid %d: %w", id.UID, err)}
		}
	}
	// Before the chdir: LookPath resolves a relative name against s.Dir itself.
	path, err := spawn.LookPath(s.Argv[0], s.Dir, s.Env)
	if err != nil {
		var se *spawn.StartError
		if errors.As(err, &se) {
			return exitCode{code: se.Code, err: err}
		}
		return exitCode{code: spawn.CodeNotExecutable, err: err}
	}
	if s.Dir != "" {
		if err := os.Chdir(s.Dir); err != nil {
			return exitCode{code: 1, err: fmt.Errorf("chdir: %w", err)}
		}
	}
	err = syscall.Exec(path, s.Argv, s.Env)
	code := spawn.CodeNotExecutable
	if errors.Is(err, unix.ENOENT) {
		code = spawn.CodeNotFound
	}
	return exitCode{code: code, err: fmt.Errorf("cannot run %q: %w", s.Argv[0], err)}
}

func logTo(w io.Writer) pid1.Logf {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "gaffer: "+format+"\n", args...)
	}
}

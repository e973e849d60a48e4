package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	pid1 "gaffer/init"
	"gaffer/reaper"
	"gaffer/signals"
	"gaffer/spawn"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

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

func runCommand(version string, sigs Signals, stderr io.Writer) *cli.Command {
	var verbose int
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "group", Aliases: []string{"g"}, EnvVars: []string{"GAFFER_GROUP"}, Usage: "forward signals to the child's whole process group"},
		&cli.StringSliceFlag{Name: "rewrite", Aliases: []string{"r"}, EnvVars: []string{"GAFFER_REWRITE"}, Usage: "forward signal `FROM:TO` instead (names or numbers; TO 0 drops it; repeatable)"},
		&cli.StringSliceFlag{Name: "success-exit", Aliases: []string{"e"}, EnvVars: []string{"GAFFER_SUCCESS_EXIT"}, Usage: "report child exit code `N` as 0 (repeatable)"},
		&cli.StringFlag{Name: "grace", EnvVars: []string{"GAFFER_GRACE"}, Value: "5s", Usage: "`DURATION` between SIGTERM and SIGKILL for processes left behind"},
		&cli.StringFlag{Name: "drain", EnvVars: []string{"GAFFER_DRAIN"}, Value: "0", Usage: "on SIGTERM or SIGINT, report not ready for `DURATION` before forwarding it (a second one is forwarded at once)"},
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
			plan, err := planSocket(c, nil, version, reaper.IsPID1(), false)
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

func runConfig(c *cli.Context, sigs Signals) (pid1.Config, error) {
	cfg := pid1.Config{Signals: sigs.C, NotifyLate: sigs.NotifyLate, Group: c.Bool("group"), Warnf: logTo(c.App.ErrWriter)}
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
	if cfg.Drain, err = parseDuration(c.String("drain")); err != nil {
		return cfg, usagef("--drain: %v", err)
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
	if sigs.C == nil {
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

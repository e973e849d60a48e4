package cli

import (
	"context"
	"io"
	"os"
	"strings"

	pid1 "gaffer/init"
	"gaffer/reaper"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func upCommand(version string, sigs Signals, stderr io.Writer) *cli.Command {
	var verbose int
	return &cli.Command{
		Name:      "up",
		Usage:     "run and supervise the processes of gaffer.toml or a Procfile",
		UsageText: "gaffer up [-c PATH]... [-f PROCFILE] [-v]",
		Flags: append([]cli.Flag{
			configFlag(),
			&cli.StringFlag{Name: "procfile", Aliases: []string{"f"}, EnvVars: []string{"GAFFER_PROCFILE"}, Usage: "read the Procfile `PROCFILE` (and the .env beside it)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Count: &verbose, Usage: "print gaffer's own diagnostics (also GAFFER_LOG=debug)"},
		}, socketFlags()...),
		OnUsageError: onUsage,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("up takes no arguments, got %q", c.Args().First())
			}
			wd, _ := os.Getwd()
			paths, err := configPaths(c, wd) // found once: a reload reads the same sources
			if err != nil {
				return err
			}
			cfg, err := loadPaths(c, paths)
			if err != nil {
				return err
			}
			plan, err := planSocket(c, &cfg.Settings, version, reaper.IsPID1(), true)
			if err != nil {
				return err
			}
			defer plan.close()
			up := pid1.UpConfig{
				Config: cfg, Signals: sigs.C, NotifyLate: sigs.NotifyLate,
				Stdout: os.Stdout, Stderr: os.Stderr, Warnf: logTo(stderr),
				Color: colorOn(cfg.Settings.Color, os.Stdout), LogBytes: cfg.Settings.LogBytes,
				ColorOn: func(setting string) bool { return colorOn(setting, os.Stdout) },
			}
			up.Serve = plan.serve(up.Warnf)
			up.Reload = configReloader(paths)
			up.SocketAccess = plan.access
			if verbose > 0 || strings.EqualFold(os.Getenv("GAFFER_LOG"), "debug") {
				up.Debugf = logTo(stderr)
			}
			// Processes without a cwd run in /, where gaffer keeps itself.
			becomeInit(up.Warnf, up.Debugf)
			code, err := pid1.Up(context.Background(), up)
			return exitCode{code: code, err: err}
		},
	}
}

// colorOn decides the colour setting: auto means when stdout is a terminal.
func colorOn(setting string, f *os.File) bool {
	switch setting {
	case "always":
		return true
	case "never":
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

package cli

import (
	"errors"
	"fmt"
	"os"

	"gaffer/config"

	"github.com/urfave/cli/v2"
)

// checkCommand is `gaffer check`: validate a config and print it normalized as JSON (exit 0), or
// print every problem as FILE:LINE: message (exit 2).
func checkCommand(onUsage cli.OnUsageErrorFunc) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate gaffer.toml or a Procfile and print it normalized as JSON",
		UsageText: "gaffer check [-c FILE]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"GAFFER_CONFIG"}, Usage: "read `FILE` (default: ./gaffer.toml, else ./Procfile with ./.env)"},
		},
		OnUsageError: onUsage,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("check takes no arguments, got %q: give the file with -c FILE", c.Args().First())
			}
			path, err := config.Find(c.String("config"), os.Getenv, ".")
			if err != nil {
				return exitCode{code: 2, err: err}
			}
			cfg, err := config.Load(path)
			if err != nil {
				var errs *config.Errors
				if !errors.As(err, &errs) {
					return exitCode{code: 2, err: err}
				}
				// One FILE:LINE: message per line, as compilers print them, without gaffer's
				// prefix, so that editors can jump to each.
				for _, e := range errs.List {
					fmt.Fprintln(c.App.ErrWriter, e.Error())
				}
				return exitCode{code: 2}
			}
			out, err := cfg.JSON()
			if err != nil {
				return exitCode{code: 2, err: err}
			}
			if _, err := c.App.Writer.Write(out); err != nil {
				return exitCode{code: 1, err: fmt.Errorf("write: %w", err)}
			}
			return nil
		},
	}
}

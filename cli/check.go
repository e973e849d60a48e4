package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// checkCommand is `gaffer check`: validate a config and print it normalized as JSON, or with
// --explain as TOML-like lines that say where each value came from (exit 0), or print every
// problem as FILE:LINE: message (exit 2).
func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate gaffer.toml or a Procfile and print it normalized as JSON",
		UsageText: "gaffer check [-c PATH]... [--explain]",
		Flags: []cli.Flag{
			configFlag(),
			&cli.BoolFlag{Name: "explain", Usage: "print the merged configuration with the FILE:LINE each value came from (or default)"},
		},
		OnUsageError: onUsage,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("check takes no arguments, got %q: give the file with -c FILE", c.Args().First())
			}
			cfg, err := loadConfig(c, ".")
			if err != nil {
				return err
			}
			var out []byte
			if c.Bool("explain") {
				out = []byte(cfg.Explain())
			} else if out, err = cfg.JSON(); err != nil {
				return exitCode{code: 2, err: err}
			}
			if _, err := c.App.Writer.Write(out); err != nil {
				return exitCode{code: 1, err: fmt.Errorf("write: %w", err)}
			}
			return nil
		},
	}
}

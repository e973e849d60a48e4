package cli

import (
	"errors"
	"fmt"
	"os"

	"gaffer/config"
	pid1 "gaffer/init"

	"github.com/urfave/cli/v2"
)

// configFlag is the -c flag of the commands that read gaffer.toml or a Procfile.
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Aliases: []string{"c"}, EnvVars: []string{"GAFFER_CONFIG"}, Usage: "read `FILE` (default: ./gaffer.toml, else ./Procfile with ./.env)"}
}

// loadConfig finds and loads the configuration, the one way for every command that reads it: the
// file of up's --procfile, else config.Find of -c FILE, $GAFFER_CONFIG, or gaffer.toml or Procfile
// in dir. dir also names the files in messages and in Config.File: check gives "." (names as the
// user typed them), up its working directory (absolute names, for gaffer moves to /). A file that
// cannot be found or read is a usage error, one line; its problems are printed one FILE:LINE:
// message per line, as compilers print them, without gaffer's prefix so that editors can jump to
// each, and gaffer exits 2.
func loadConfig(c *cli.Context, dir string) (*config.Config, error) {
	path := c.String("procfile")
	if path == "" {
		var err error
		if path, err = config.Find(c.String("config"), os.Getenv, dir); err != nil {
			return nil, usagef("%v", err)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		var errs *config.Errors
		if !errors.As(err, &errs) {
			return nil, usagef("%v", err)
		}
		for _, e := range errs.List {
			fmt.Fprintln(c.App.ErrWriter, e.Error())
		}
		return nil, exitCode{code: 2}
	}
	if bad := refuseHTTPS(cfg); len(bad) > 0 {
		for _, line := range bad {
			fmt.Fprintln(c.App.ErrWriter, line)
		}
		return nil, exitCode{code: 2}
	}
	return cfg, nil
}

// refuseHTTPS lists, as FILE:LINE: message, the https readiness and health probes of cfg when
// this gaffer was built without TLS (pid1.HTTPSProbes): they could never succeed, so the config
// is refused before anything starts rather than each process failing its probe until
// ready_timeout, or being restarted as unhealthy.
func refuseHTTPS(cfg *config.Config) []string {
	if pid1.HTTPSProbes {
		return nil
	}
	var out []string
	for _, p := range cfg.Processes {
		for _, probe := range []struct {
			key string
			p   config.Probe
		}{{"ready", p.Ready}, {"health", p.Health}} {
			if probe.p.Kind == config.ProbeHTTPS {
				out = append(out, fmt.Sprintf("%s:%d: process.%s.%s: %q: this gaffer was built without TLS (-tags gaffer_notls); use http://, tcp:// or exec: with a client in the image",
					cfg.File, p.Line, p.Name, probe.key, probe.p.Target))
			}
		}
	}
	return out
}

package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"gaffer/config"
	pid1 "gaffer/init"

	"github.com/urfave/cli/v2"
)

// configFlag is the -c flag of the commands that read gaffer.toml or a Procfile. It repeats, one
// layer each; $GAFFER_CONFIG is read by configPaths, not by urfave/cli, which would split it on
// commas (or not at all: DisableSliceFlagSeparator) where gaffer wants colons.
func configFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "config", Aliases: []string{"c"},
		Usage: "read `PATH`, a file or a directory of *.toml files (read in lexical order); repeat -c for layers, later ones override " +
			"(default: $GAFFER_CONFIG, a colon-separated list, else ./gaffer.toml, else ./Procfile with ./.env)"}
}

// configPaths are the config sources: up's --procfile, else config.Find of the -c paths,
// $GAFFER_CONFIG, or gaffer.toml or Procfile in dir. A path that does not exist is a usage error
// that names it as given. With an absolute dir (up's working directory) relative paths are made
// absolute: up moves to / before it runs anything, and reads the same paths again on a reload.
func configPaths(c *cli.Context, dir string) ([]string, error) {
	paths := []string{c.String("procfile")}
	if paths[0] == "" {
		var err error
		if paths, err = config.Find(c.StringSlice("config"), os.Getenv, dir); err != nil {
			return nil, usagef("%v", err)
		}
	}
	if filepath.IsAbs(dir) {
		for i, p := range paths {
			if !filepath.IsAbs(p) {
				paths[i] = filepath.Join(dir, p)
			}
		}
	}
	return paths, nil
}

// loadConfig finds and loads the configuration, the one way for every command that reads it (see
// configPaths). dir also names the files in messages and in Config.File: check gives "." (names as
// the user typed them), up its working directory (absolute names, for gaffer moves to /). A path
// that cannot be found is a usage error, one line; the configuration's problems are printed one
// FILE:LINE: message per line, as compilers print them, without gaffer's prefix so that editors
// can jump to each, and gaffer exits 2.
func loadConfig(c *cli.Context, dir string) (*config.Config, error) {
	paths, err := configPaths(c, dir)
	if err != nil {
		return nil, err
	}
	return loadPaths(c, paths)
}

// loadPaths is loadConfig of the sources configPaths found.
func loadPaths(c *cli.Context, paths []string) (*config.Config, error) {
	cfg, err := loadChecked(paths)
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
	return cfg, nil
}

// loadChecked is config.LoadLayers and what only this gaffer binary can refuse (refuseHTTPS);
// every problem comes back as an *config.Errors.
func loadChecked(paths []string) (*config.Config, error) {
	cfg, err := config.LoadLayers(paths)
	if err != nil {
		return nil, err
	}
	if bad := refuseHTTPS(cfg); len(bad) > 0 {
		return nil, &config.Errors{List: bad}
	}
	return cfg, nil
}

// configReloader is UpConfig.Reload for up: it reads paths, the sources up started from (absolute:
// configPaths of up's working directory), again from scratch, directories listed anew (a file
// added to conf.d is read). Its error is an *config.Errors whose Error() is every problem as
// FILE:LINE: message, one per line.
func configReloader(paths []string) func() (*config.Config, error) {
	return func() (*config.Config, error) { return loadChecked(paths) }
}

// refuseHTTPS lists the https readiness and health probes of cfg when this gaffer was built
// without TLS (pid1.HTTPSProbes): they could never succeed, so the config is refused before
// anything starts rather than each process failing its probe until ready_timeout, or being
// restarted as unhealthy. Each is reported at its process's [header], or, when a later layer set
// the probe, at the probe's own line in that layer.
func refuseHTTPS(cfg *config.Config) []config.Error {
	if pid1.HTTPSProbes {
		return nil
	}
	var out []config.Error
	for _, p := range cfg.Processes {
		for _, probe := range []struct {
			key string
			p   config.Probe
		}{{"ready", p.Ready}, {"health", p.Health}} {
			if probe.p.Kind != config.ProbeHTTPS {
				continue
			}
			file, line := cfg.Origin("process", p.Name, probe.key)
			if table, _ := cfg.Origin("process", p.Name); file == table || file == "" {
				file, line = table, p.Line
			}
			out = append(out, config.Error{File: file, Line: line,
				Msg: fmt.Sprintf("process.%s.%s: %q: this gaffer was built without TLS (-tags gaffer_notls); use http://, tcp:// or exec: with a client in the image",
					p.Name, probe.key, probe.p.Target)})
		}
	}
	return out
}

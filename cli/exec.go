package cli

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"gaffer/spawn"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func execCommand() *cli.Command {
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

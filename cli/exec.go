package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime"
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
//
// Linux credentials belong to a thread, and execve keeps those of the thread that calls it and
// ends the others. So the switch, the lookup (access(2) checks the thread's credentials) and the
// exec all run on this goroutine's thread, locked to it and never unlocked: gaffer exits if any
// step fails, and until then no other goroutine may run on a thread with the user's credentials
// (the runtime starts new threads from a clean one while a thread is locked). syscall.Setuid and
// Setgid would change every thread of the process instead (AllThreadsSyscall: stop the world and
// signal each thread, 14% of gaffer exec's cpu), threads that execve is about to end.
func execSpec(s spawn.Spec) error {
	runtime.LockOSThread()
	if id := s.Identity; id != nil {
		groups := make([]int, len(id.Groups))
		for i, g := range id.Groups {
			groups[i] = int(g)
		}
		// unix.Setgroups is this thread's setgroups(2); setgid and setuid below are too.
		if err := unix.Setgroups(groups); err != nil {
			return exitCode{code: 1, err: fmt.Errorf("setgroups %v: %w", id.Groups, err)}
		}
		if err := threadSetgid(int(id.GID)); err != nil {
			return exitCode{code: 1, err: fmt.Errorf("setgid %d: %w", id.GID, err)}
		}
		if err := threadSetuid(int(id.UID)); err != nil {
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

// threadSetgid is setgid(2) for the calling thread only (see execSpec).
func threadSetgid(gid int) error {
	if _, _, e := unix.RawSyscall(sysSetgid, uintptr(gid), 0, 0); e != 0 {
		return e
	}
	return nil
}

// threadSetuid is setuid(2) for the calling thread only (see execSpec).
func threadSetuid(uid int) error {
	if _, _, e := unix.RawSyscall(sysSetuid, uintptr(uid), 0, 0); e != 0 {
		return e
	}
	return nil
}

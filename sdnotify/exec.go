package sdnotify

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ExecCommand is the hidden command of gaffer's binary that the launcher starts in place of a
// process that must find its own pid in its environment (LISTEN_PID, WATCHDOG_PID): Go cannot run
// code in the child between fork and exec, so the child re-executes gaffer (/proc/self/exe), which
// sets the variables to getpid() and executes the process, keeping the pid, the descriptors and
// the credentials. It costs one exec of gaffer (about a millisecond).
const ExecCommand = "__sd-exec"

// ExecArgv is the argv that starts argv (whose program was resolved to path) through the shim
// self (gaffer's binary, "/proc/self/exe"), with each of vars set to the process's pid.
func ExecArgv(self string, vars []string, path string, argv []string) []string {
	return append([]string{self, ExecCommand, strings.Join(vars, ","), path}, argv...)
}

// Exec is the shim: args are what follows ExecCommand in the argv ExecArgv built. It sets the
// variables and executes the program, and returns only when that failed, with the exit code a
// shell would use (127 not found, 126 not executable).
func Exec(args []string) (int, error) {
	if len(args) < 3 {
		return 2, errors.New(ExecCommand + ": want VARS PATH ARGV0 [ARG...]")
	}
	pid := strconv.Itoa(os.Getpid())
	env := os.Environ()
	for _, k := range strings.Split(args[0], ",") {
		if k != "" {
			env = setenv(env, k, pid)
		}
	}
	err := syscall.Exec(args[1], args[2:], env)
	code := 126
	if errors.Is(err, syscall.ENOENT) {
		code = 127
	}
	return code, fmt.Errorf("cannot run %q: %w", args[1], err)
}

// setenv returns env with key=value, replacing every earlier assignment of key.
func setenv(env []string, key, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

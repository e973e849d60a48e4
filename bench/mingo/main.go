// Command mingo is a reference for the benchmarks, not a product: the smallest Go program that
// does what gaffer does on the measured paths, with the cheapest means Go offers and nothing else:
// no CLI library, no options, no config, no API. What gaffer costs beyond it (start-up, memory,
// forwarding delay) is gaffer's own; what mingo costs beyond tini, catatonit and gosu is Go's.
//
//	mingo -- CMD [ARG...]                 an init, as gaffer -- CMD
//	mingo exec [--user SPEC] -- CMD [ARG...]  switch user and exec, as gaffer exec (and gosu)
//
// As an init it keeps gaffer's signal rule (DESIGN.md rule 2): signal.Notify for the signals that
// could harm it (signals.Early) first, then the child (syscall.ForkExec, in its own process group),
// then the other forwardable signals one Notify each on a goroutine; it forwards every signal but
// CHLD to the child, reaps everything, and exits with the child's code. exec resolves SPEC (user,
// uid, user:group or uid:gid) from /etc/passwd and /etc/group, switches the ids of one locked
// thread and execs from it, as gaffer exec does.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"gaffer/bench/internal/minexec"
	"gaffer/signals"

	"golang.org/x/sys/unix"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "exec" {
		os.Exit(execMode(args[1:]))
	}
	sigs := make(chan os.Signal, 1024)
	signal.Notify(sigs, signals.Early()...)
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: mingo -- CMD [ARG...] | mingo exec [--user SPEC] -- CMD [ARG...]")
		os.Exit(2)
	}
	path, err := minexec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mingo: %v\n", err)
		os.Exit(127)
	}
	if os.Getpid() != 1 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	child, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "mingo: %v\n", err)
		os.Exit(126)
	}
	go func() {
		for _, s := range signals.Late() {
			signal.Notify(sigs, s)
		}
	}()
	code := -1
	for s := range sigs {
		sig := s.(syscall.Signal)
		if sig != unix.SIGCHLD {
			_ = unix.Kill(child, sig)
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.ECHILD) && code >= 0 {
				os.Exit(code)
			}
			if err != nil || pid <= 0 {
				break
			}
			if pid == child {
				code = ws.ExitStatus()
				if ws.Signaled() {
					code = 128 + int(ws.Signal())
				}
			}
		}
	}
}

// execMode is `mingo exec [--user SPEC] -- CMD [ARG...]`.
func execMode(args []string) int {
	var spec string
	if len(args) >= 2 && args[0] == "--user" {
		spec, args = args[1], args[2:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	return minexec.Exec("mingo", spec, args)
}

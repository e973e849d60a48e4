// Command mingo is a reference for the benchmarks, not a product: the smallest init in Go that
// keeps gaffer's signal rule (signal.Notify for every signal but SIGKILL, SIGSTOP, SIGURG and the
// two the C library keeps, before anything else), starts one child in its own process group,
// forwards every other signal to it, reaps, and exits with its code. No CLI library, no options.
// What gaffer costs beyond it (startup, memory, forwarding delay) is gaffer's own; what mingo costs
// beyond tini is Go's.
//
//	mingo -- CMD [ARG...]
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	sigs := make(chan os.Signal, 1024)
	var all []os.Signal
	for n := 1; n <= 64; n++ {
		s := syscall.Signal(n)
		if s == unix.SIGKILL || s == unix.SIGSTOP || s == unix.SIGURG || n == 32 || n == 33 {
			continue
		}
		all = append(all, s)
	}
	signal.Notify(sigs, all...)

	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: mingo -- CMD [ARG...]")
		os.Exit(2)
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mingo: %v\n", err)
		os.Exit(127)
	}
	if os.Getpid() != 1 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	p, err := os.StartProcess(path, args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "mingo: %v\n", err)
		os.Exit(126)
	}
	child, code := p.Pid, -1
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

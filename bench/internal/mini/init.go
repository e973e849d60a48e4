package mini

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"gaffer/signals"

	"golang.org/x/sys/unix"
)

// Init runs argv as the child of an init and returns the code to exit with: the child's, or 126
// and 127 when it cannot start. sigs must already carry signals.Early (DESIGN.md rule 2: notified
// first thing in main); Init notifies the late ones once the child runs, one Notify each on a
// goroutine, forwards every signal but CHLD to the child, and reaps everything.
func Init(prog string, sigs chan os.Signal, argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintf(os.Stderr, "usage: %s -- CMD [ARG...]\n", prog)
		return 2
	}
	path, err := LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return 127
	}
	if os.Getpid() != 1 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	child, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return 126
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
				return code
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
	return code // not reached: sigs is never closed
}

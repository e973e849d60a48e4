// Package reaper is the only caller of wait4 in gaffer. A second waiter beside it (os/exec's Wait,
// Output, Run) would steal exit statuses, so every child is started through Reaper.Start and learns
// of its end from the channel Start returns.
package reaper

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Exit is one collected child.
type Exit struct {
	Pid    int
	Status unix.WaitStatus
}

// Code encodes the exit the way shells do: the exit status, or 128+n for a death by signal n.
func (e Exit) Code() int {
	return Code(e.Status)
}

// Code encodes a wait status the way shells do: the exit status, or 128+n for a death by signal n.
func Code(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}

// Reaper collects exited children and hands each exit to whoever started that child.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan Exit // guarded by mu
	reaped  uint64            // guarded by mu
	orphans uint64            // guarded by mu
}

// New returns a Reaper with nothing registered.
func New() *Reaper {
	return &Reaper{waiters: map[int]chan Exit{}}
}

// Start calls fork, which must start exactly one child and return its pid, and registers that pid.
// It holds the lock Reap takes, so the child cannot be collected before it is registered; this also
// keeps Reap away from the failed child that Go's fork/exec waits for itself when exec fails.
// The channel receives the child's exit once.
func (r *Reaper) Start(fork func() (int, error)) (int, <-chan Exit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := fork()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan Exit, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

// Reap collects every child that has exited, without blocking. Exits of pids registered by Start go
// to their channels; the others, orphans reparented to gaffer, are returned. none reports that
// gaffer has no children left at all (wait4 said ECHILD).
func (r *Reaper) Reap() (orphans []Exit, none bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			return orphans, true, nil
		case err != nil:
			return orphans, false, fmt.Errorf("wait4: %w", err)
		case pid <= 0:
			return orphans, false, nil
		}
		r.reaped++
		e := Exit{Pid: pid, Status: ws}
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- e
			continue
		}
		r.orphans++
		orphans = append(orphans, e)
	}
}

// Counts reports how many children were reaped in all, and how many of them were orphans that
// nobody had registered.
func (r *Reaper) Counts() (reaped, orphans uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped, r.orphans
}

// IsPID1 reports whether gaffer is the init of its PID namespace.
func IsPID1() bool {
	return os.Getpid() == 1
}

// SetSubreaper makes orphaned descendants of this process its children instead of PID 1's, so that
// gaffer can reap them when it is not PID 1.
func SetSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set child subreaper: %w", err)
	}
	return nil
}

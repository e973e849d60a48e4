package sdnotify

import (
	"errors"
	"gaffer/reaper"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxDepth bounds the walk up the process tree from a sender: a process nested deeper than this
// below gaffer is not attributed to anyone.
const MaxDepth = 64

// Lineage returns pid and its ancestors, read from /proc, nearest first, up to and including root
// (gaffer's own pid); ok says whether root was reached. A process that is gone ends the walk.
// The answer is a snapshot: the sender should still be alive when it is read (systemd-notify
// waits for that with its barrier).
func Lineage(pid, root int) (chain []int, ok bool) {
	for p := pid; p > 0 && len(chain) < MaxDepth; {
		chain = append(chain, p)
		if p == root {
			return chain, true
		}
		next, found := reaper.ParentOf(p)
		if !found {
			break
		}
		p = next
	}
	return chain, false
}

// Pidfd holds a process that gaffer did not start (a MAINPID) through a pidfd: signals reach it
// and never a process that reused its pid, and Wait learns of its exit without being its parent.
type Pidfd struct {
	pid int
	f   *os.File // non-blocking, so that Go's poller waits on it
}

// OpenPidfd opens pid.
func OpenPidfd(pid int) (*Pidfd, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return &Pidfd{pid: pid, f: os.NewFile(uintptr(fd), "pidfd "+strconv.Itoa(pid))}, nil
}

// PID is the process's pid.
func (p *Pidfd) PID() int { return p.pid }

// Signal sends sig to the process; os.ErrProcessDone once it has exited.
func (p *Pidfd) Signal(sig syscall.Signal) error {
	raw, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.PidfdSendSignal(int(fd), sig, nil, 0) }); err != nil {
		return err
	}
	if errors.Is(serr, unix.ESRCH) {
		return os.ErrProcessDone
	}
	return serr
}

// Exited reports whether the process has exited (its pidfd is readable), without waiting.
func (p *Pidfd) Exited() bool {
	raw, err := p.f.SyscallConn()
	if err != nil {
		return true
	}
	done := false
	_ = raw.Control(func(fd uintptr) { done = readable(int(fd)) })
	return done
}

// Pgid is the process's group while it runs; 0 once it has exited.
func (p *Pidfd) Pgid() int {
	if p.Exited() {
		return 0
	}
	pgid, err := unix.Getpgid(p.pid)
	if err != nil || p.Exited() {
		return 0 // gone meanwhile: the pgid read may be another process's
	}
	return pgid
}

// Wait blocks until the process has exited (nil) or p is closed (an error). It parks a goroutine
// in Go's poller, not a thread.
func (p *Pidfd) Wait() error {
	raw, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	return raw.Read(func(fd uintptr) bool { return readable(int(fd)) })
}

// Close releases the pidfd; a Wait under way returns an error.
func (p *Pidfd) Close() error { return p.f.Close() }

// readable polls fd once: a pidfd is readable once its process has exited.
func readable(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0
	}
}

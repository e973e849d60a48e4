// Package signals knows which signals an init forwards, which it never does, and how signals are
// named on the command line.
package signals

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Min and Max bound the signal numbers on Linux; RTMin and RTMax are the C library's SIGRTMIN and
// SIGRTMAX. 32 and 33 belong to the C library's threads and the Go runtime keeps 32-34 for itself
// (34 is musl's SIGSYNCCALL): os/signal cannot deliver them, so gaffer forwards RTMIN+1 to RTMAX.
const (
	Min   = 1
	Max   = 64
	RTMin = 34
	RTMax = 64
)

// neverForward are the signals an init must keep to itself: SIGCHLD is its own business, SIGURG is the
// Go runtime's preemption signal, SIGPIPE means gaffer's own stdout broke, and the fault signals sent
// by kill(2) must not crash or confuse the child. SIGKILL and SIGSTOP cannot be caught at all, and
// the Go runtime keeps SIGPROF for its profiler: os/signal never delivers it (runtime.sigenable).
var neverForward = [...]syscall.Signal{
	unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE, unix.SIGPROF,
	unix.SIGFPE, unix.SIGILL, unix.SIGSEGV, unix.SIGBUS, unix.SIGABRT, unix.SIGTRAP, unix.SIGSYS,
	unix.SIGKILL, unix.SIGSTOP,
}

// NeverForward reports whether sig is one gaffer keeps to itself.
func NeverForward(sig syscall.Signal) bool {
	for _, s := range neverForward {
		if s == sig {
			return true
		}
	}
	return Reserved(sig)
}

// Reserved reports whether the Go runtime keeps sig for itself, so that no Go program can catch it.
// As PID 1 they are harmless: the kernel drops signals that init has not caught.
func Reserved(sig syscall.Signal) bool {
	return sig >= 32 && sig <= 34
}

// JobControl reports whether sig is one of the terminal stop signals. gaffer never stops on them; it
// stops the child instead.
func JobControl(sig syscall.Signal) bool {
	return sig == unix.SIGTSTP || sig == unix.SIGTTIN || sig == unix.SIGTTOU
}

// Terminating reports whether sig is one of the signals that ask a container to stop (docker stop,
// Ctrl-C, Ctrl-\).
func Terminating(sig syscall.Signal) bool {
	return sig == unix.SIGTERM || sig == unix.SIGINT || sig == unix.SIGQUIT
}

// Handled lists every signal gaffer must signal.Notify before anything else: all catchable ones but
// SIGURG and SIGPROF, which the Go runtime keeps for itself. A Go program that receives a signal it did not Notify may die of it, and as PID 1 that is
// the container's end.
func Handled() []os.Signal {
	var out []os.Signal
	for n := Min; n <= Max; n++ {
		sig := syscall.Signal(n)
		if sig == unix.SIGKILL || sig == unix.SIGSTOP || sig == unix.SIGURG || sig == unix.SIGPROF || Reserved(sig) {
			continue
		}
		out = append(out, sig)
	}
	return out
}

// Early lists the signals gaffer must Notify before anything else: those the Go runtime turns into
// gaffer's death or stop when nobody asked for them (HUP INT QUIT ILL TRAP ABRT STKFLT TERM SYS,
// the job-control stops and CONT) and CHLD, without which an early child exit would go unseen.
// Each Notify is a round trip to the runtime's signal thread (about 30us), so the rest (Late)
// follows while the child starts: until then those are dropped, never fatal.
func Early() []os.Signal {
	return []os.Signal{
		unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP,
		unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGCONT,
		unix.SIGILL, unix.SIGTRAP, unix.SIGABRT, unix.SIGSTKFLT, unix.SIGSYS,
	}
}

// Late lists the handled signals that are not Early.
func Late() []os.Signal {
	early := Early()
	var out []os.Signal
	for _, s := range Handled() {
		if !slices.Contains(early, s) {
			out = append(out, s)
		}
	}
	return out
}

var names = map[string]syscall.Signal{
	"HUP": unix.SIGHUP, "INT": unix.SIGINT, "QUIT": unix.SIGQUIT, "ILL": unix.SIGILL,
	"TRAP": unix.SIGTRAP, "ABRT": unix.SIGABRT, "IOT": unix.SIGABRT, "BUS": unix.SIGBUS,
	"FPE": unix.SIGFPE, "KILL": unix.SIGKILL, "USR1": unix.SIGUSR1, "SEGV": unix.SIGSEGV,
	"USR2": unix.SIGUSR2, "PIPE": unix.SIGPIPE, "ALRM": unix.SIGALRM, "TERM": unix.SIGTERM,
	"STKFLT": unix.SIGSTKFLT, "CHLD": unix.SIGCHLD, "CLD": unix.SIGCHLD, "CONT": unix.SIGCONT,
	"STOP": unix.SIGSTOP, "TSTP": unix.SIGTSTP, "TTIN": unix.SIGTTIN, "TTOU": unix.SIGTTOU,
	"URG": unix.SIGURG, "XCPU": unix.SIGXCPU, "XFSZ": unix.SIGXFSZ, "VTALRM": unix.SIGVTALRM,
	"PROF": unix.SIGPROF, "WINCH": unix.SIGWINCH, "IO": unix.SIGIO, "POLL": unix.SIGIO,
	"PWR": unix.SIGPWR, "SYS": unix.SIGSYS,
}

// canonical is the name Name prints for each number; aliases (IOT, CLD, POLL) parse but never print.
var canonical = [...]string{
	1: "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
	"PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU",
	"XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
}

// Parse reads a signal given as a name (TERM, SIGTERM, sigterm), a number (15), or a real-time
// offset (RTMIN, RTMIN+3, SIGRTMAX-1).
func Parse(s string) (syscall.Signal, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("empty signal name")
	}
	if n, err := strconv.Atoi(in); err == nil {
		if n < Min || n > Max {
			return 0, fmt.Errorf("signal number %d out of range %d-%d", n, Min, Max)
		}
		return syscall.Signal(n), nil
	}
	up := strings.TrimPrefix(strings.ToUpper(in), "SIG")
	if sig, ok := names[up]; ok {
		return sig, nil
	}
	if rt, ok := parseRT(up); ok {
		return rt, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func parseRT(up string) (syscall.Signal, bool) {
	var base, sign int
	var rest string
	switch {
	case strings.HasPrefix(up, "RTMIN"):
		base, sign, rest = RTMin, 1, up[len("RTMIN"):]
	case strings.HasPrefix(up, "RTMAX"):
		base, sign, rest = RTMax, -1, up[len("RTMAX"):]
	default:
		return 0, false
	}
	if rest == "" {
		return syscall.Signal(base), true
	}
	want := "+"
	if sign < 0 {
		want = "-"
	}
	if !strings.HasPrefix(rest, want) {
		return 0, false
	}
	off, err := strconv.Atoi(rest[1:])
	if err != nil || off < 0 || strings.HasPrefix(rest[1:], "+") || strings.HasPrefix(rest[1:], "-") {
		return 0, false
	}
	n := base + sign*off
	if n < RTMin || n > RTMax {
		return 0, false
	}
	return syscall.Signal(n), true
}

// Name is the conventional name of sig without the SIG prefix: TERM, RTMIN+2, or the number.
func Name(sig syscall.Signal) string {
	n := int(sig)
	switch {
	case n >= 1 && n < len(canonical):
		return canonical[n]
	case n == RTMin:
		return "RTMIN"
	case n == RTMax:
		return "RTMAX"
	case n > RTMin && n <= RTMin+15:
		return fmt.Sprintf("RTMIN+%d", n-RTMin)
	case n > RTMin+15 && n < RTMax:
		return fmt.Sprintf("RTMAX-%d", RTMax-n)
	}
	return strconv.Itoa(n)
}

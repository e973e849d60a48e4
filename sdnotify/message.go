// Package sdnotify is the receiving end of systemd's sd_notify protocol for gaffer: the datagram
// socket that NOTIFY_SOCKET names (with SO_PASSCRED, so every message carries its sender's pid),
// the parser of its messages, the walk up /proc that attributes a sender to a process tree, pidfds
// for a MAINPID that gaffer did not start, and the re-exec shim that sets LISTEN_PID and
// WATCHDOG_PID to the child's own pid (Go cannot run code between fork and exec).
package sdnotify

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// MaxMessage is the largest message read, in bytes, as systemd's (PIPE_BUF): a longer one is
// dropped whole.
const MaxMessage = 4096

// Message is what one datagram says, in the keys gaffer understands; the others are ignored.
type Message struct {
	Ready     bool // READY=1
	Reloading bool // RELOADING=1
	Stopping  bool // STOPPING=1
	// Status is STATUS=text (control characters and invalid UTF-8 replaced); HasStatus tells an
	// empty STATUS= (which clears it) from none.
	Status    string
	HasStatus bool
	Errno     int // ERRNO=n; -1 when absent
	MainPID   int // MAINPID=pid; 0 when absent
	// ExtendTimeout is EXTEND_TIMEOUT_USEC=n; 0 when absent.
	ExtendTimeout   time.Duration
	Watchdog        bool // WATCHDOG=1
	WatchdogTrigger bool // WATCHDOG=trigger
	// WatchdogTimeout is WATCHDOG_USEC=n; HasWatchdogTimeout tells 0 (off) from none.
	WatchdogTimeout    time.Duration
	HasWatchdogTimeout bool
}

// Parse reads a message: newline-separated KEY=VALUE assignments, as sd_notify(3) sends them. A
// line without "=", an unknown key and a value that does not parse are ignored; when a key comes
// twice, the last one counts.
func Parse(b []byte) Message {
	m := Message{Errno: -1}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		k, v, ok := strings.Cut(string(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "READY":
			m.Ready = m.Ready || v == "1"
		case "RELOADING":
			m.Reloading = m.Reloading || v == "1"
		case "STOPPING":
			m.Stopping = m.Stopping || v == "1"
		case "STATUS":
			m.Status, m.HasStatus = clean(v), true
		case "ERRNO":
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				m.Errno = n
			}
		case "MAINPID":
			if n, err := strconv.Atoi(v); err == nil && n > 1 {
				m.MainPID = n
			}
		case "EXTEND_TIMEOUT_USEC":
			if d, ok := usec(v); ok && d > 0 {
				m.ExtendTimeout = d
			}
		case "WATCHDOG":
			switch v {
			case "1":
				m.Watchdog = true
			case "trigger":
				m.WatchdogTrigger = true
			}
		case "WATCHDOG_USEC":
			if d, ok := usec(v); ok {
				m.WatchdogTimeout, m.HasWatchdogTimeout = d, true
			}
		}
	}
	return m
}

// usec reads a number of microseconds; values beyond what a Duration holds are refused.
func usec(v string) (time.Duration, bool) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, false
	}
	return time.Duration(n) * time.Microsecond, true
}

// clean makes a status text safe for one line of gaffer's output: invalid UTF-8 and control
// characters become U+FFFD.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '\uFFFD'
		}
		return r
	}, s)
}

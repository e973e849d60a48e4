package signals

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr bool
	}{
		// Names, with and without the SIG prefix, in any case.
		{in: "TERM", want: unix.SIGTERM},
		{in: "SIGTERM", want: unix.SIGTERM},
		{in: "sigterm", want: unix.SIGTERM},
		{in: "term", want: unix.SIGTERM},
		{in: "SigHup", want: unix.SIGHUP},
		{in: " INT ", want: unix.SIGINT},
		{in: "KILL", want: unix.SIGKILL},
		{in: "USR1", want: unix.SIGUSR1},
		{in: "SIGUSR2", want: unix.SIGUSR2},
		{in: "WINCH", want: unix.SIGWINCH},
		{in: "STKFLT", want: unix.SIGSTKFLT},
		{in: "PWR", want: unix.SIGPWR},
		{in: "SYS", want: unix.SIGSYS},
		// Aliases.
		{in: "IOT", want: unix.SIGABRT},
		{in: "SIGIOT", want: unix.SIGABRT},
		{in: "CLD", want: unix.SIGCHLD},
		{in: "POLL", want: unix.SIGIO},
		{in: "IO", want: unix.SIGIO},
		// Numbers.
		{in: "1", want: 1},
		{in: "15", want: 15},
		{in: "32", want: 32},
		{in: "33", want: 33},
		{in: "64", want: 64},
		{in: "0", wantErr: true},
		{in: "65", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "1.5", wantErr: true},
		// Real-time signals.
		{in: "RTMIN", want: 34},
		{in: "SIGRTMIN", want: 34},
		{in: "rtmin", want: 34},
		{in: "RTMIN+3", want: 37},
		{in: "RTMIN+0", want: 34},
		{in: "RTMIN+30", want: 64},
		{in: "SIGRTMAX-2", want: 62},
		{in: "RTMAX", want: 64},
		{in: "RTMAX-30", want: 34},
		{in: "RTMAX-0", want: 64},
		{in: "RTMIN+31", wantErr: true},
		{in: "RTMAX-31", wantErr: true},
		{in: "RTMIN-1", wantErr: true},
		{in: "RTMAX+1", wantErr: true},
		{in: "RTMIN+", wantErr: true},
		{in: "RTMAX-", wantErr: true},
		{in: "RTMIN+x", wantErr: true},
		{in: "RTMIN++1", wantErr: true},
		{in: "RTMAX--1", wantErr: true},
		{in: "RTMIN+-1", wantErr: true},
		{in: "RTMINX", wantErr: true},
		// Malformed.
		{in: "", wantErr: true},
		{in: "   ", wantErr: true},
		{in: "SIG", wantErr: true},
		{in: "TERMX", wantErr: true},
		{in: "SIGSIGTERM", wantErr: true},
		{in: "FOO", wantErr: true},
		{in: "15x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse(%q) = %d, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrorNamesInput(t *testing.T) {
	for _, in := range []string{"TERMX", "RTMIN+x", "0"} {
		_, err := Parse(in)
		if err == nil {
			t.Fatalf("Parse(%q): no error", in)
		}
		want := in
		if in == "0" {
			want = "0 out of range"
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error %q does not mention %q", in, err, want)
		}
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		sig  syscall.Signal
		want string
	}{
		{unix.SIGHUP, "HUP"},
		{unix.SIGABRT, "ABRT"},
		{unix.SIGCHLD, "CHLD"},
		{unix.SIGIO, "IO"},
		{unix.SIGTERM, "TERM"},
		{unix.SIGSYS, "SYS"},
		{32, "32"},
		{33, "33"},
		{34, "RTMIN"},
		{35, "RTMIN+1"},
		{49, "RTMIN+15"},
		{50, "RTMAX-14"},
		{63, "RTMAX-1"},
		{64, "RTMAX"},
		{0, "0"},
		{65, "65"},
		{-1, "-1"},
	}
	for _, tt := range tests {
		if got := Name(tt.sig); got != tt.want {
			t.Errorf("Name(%d) = %q, want %q", tt.sig, got, tt.want)
		}
	}
}

func TestNameRoundTrip(t *testing.T) {
	for n := Min; n <= Max; n++ {
		if n == 32 || n == 33 {
			continue
		}
		sig := syscall.Signal(n)
		name := Name(sig)
		if _, err := strconv.Atoi(name); err == nil {
			t.Errorf("Name(%d) = %q, want a name, not a number", n, name)
			continue
		}
		for _, in := range []string{name, "SIG" + name} {
			got, err := Parse(in)
			if err != nil {
				t.Errorf("Parse(Name(%d) = %q): %v", n, in, err)
				continue
			}
			if got != sig {
				t.Errorf("Parse(%q) = %d, want %d", in, got, n)
			}
		}
	}
}

func TestNameMatchesUnix(t *testing.T) {
	// x/sys/unix knows the conventional names of the classic signals ("SIGTERM").
	for n := 1; n <= 31; n++ {
		want := unix.SignalName(syscall.Signal(n))
		if want == "" {
			continue
		}
		if got := "SIG" + Name(syscall.Signal(n)); got != want {
			t.Errorf("Name(%d) = SIG%s, unix says %s", n, Name(syscall.Signal(n)), want)
		}
	}
}

func TestNeverForward(t *testing.T) {
	want := map[syscall.Signal]bool{
		unix.SIGCHLD: true, unix.SIGURG: true, unix.SIGPIPE: true, unix.SIGPROF: true,
		unix.SIGFPE: true, unix.SIGILL: true, unix.SIGSEGV: true, unix.SIGBUS: true,
		unix.SIGABRT: true, unix.SIGTRAP: true, unix.SIGSYS: true,
		unix.SIGKILL: true, unix.SIGSTOP: true, 32: true, 33: true, 34: true,
	}
	if len(want) != 16 {
		t.Fatalf("test table has %d entries, want 16", len(want))
	}
	for n := 0; n <= Max+1; n++ {
		sig := syscall.Signal(n)
		if got := NeverForward(sig); got != want[sig] {
			t.Errorf("NeverForward(%d %s) = %v, want %v", n, Name(sig), got, want[sig])
		}
	}
}

func TestJobControlAndTerminating(t *testing.T) {
	for n := Min; n <= Max; n++ {
		sig := syscall.Signal(n)
		wantJC := sig == unix.SIGTSTP || sig == unix.SIGTTIN || sig == unix.SIGTTOU
		if got := JobControl(sig); got != wantJC {
			t.Errorf("JobControl(%s) = %v, want %v", Name(sig), got, wantJC)
		}
		wantTerm := sig == unix.SIGTERM || sig == unix.SIGINT || sig == unix.SIGQUIT
		if got := Terminating(sig); got != wantTerm {
			t.Errorf("Terminating(%s) = %v, want %v", Name(sig), got, wantTerm)
		}
	}
}

func TestHandled(t *testing.T) {
	got := Handled()
	seen := map[syscall.Signal]int{}
	for _, s := range got {
		sig, ok := s.(syscall.Signal)
		if !ok {
			t.Fatalf("Handled() holds %T %v, want syscall.Signal", s, s)
		}
		seen[sig]++
	}
	skip := []syscall.Signal{unix.SIGKILL, unix.SIGSTOP, unix.SIGURG, unix.SIGPROF, 32, 33, 34}
	for n := Min; n <= Max; n++ {
		sig := syscall.Signal(n)
		want := 1
		if slices.Contains(skip, sig) {
			want = 0
		}
		if seen[sig] != want {
			t.Errorf("Handled() holds %s %d times, want %d", Name(sig), seen[sig], want)
		}
	}
	if want := Max - Min + 1 - len(skip); len(got) != want {
		t.Errorf("len(Handled()) = %d, want %d: %v", len(got), want, fmt.Sprint(got))
	}
	// Every signal that is forwarded must be handled, or gaffer could never see it.
	for n := Min; n <= Max; n++ {
		sig := syscall.Signal(n)
		if !NeverForward(sig) && seen[sig] == 0 {
			t.Errorf("%s is forwarded but not in Handled()", Name(sig))
		}
	}
}

func TestEarlyAndLateCoverHandled(t *testing.T) {
	seen := map[os.Signal]int{}
	for _, s := range Early() {
		seen[s]++
	}
	for _, s := range Late() {
		seen[s]++
	}
	for _, s := range Handled() {
		if seen[s] != 1 {
			t.Errorf("SIG%s is in Early+Late %d times, want exactly once", Name(s.(syscall.Signal)), seen[s])
		}
		delete(seen, s)
	}
	if len(seen) != 0 {
		t.Errorf("Early/Late hold signals that are not handled: %v", seen)
	}
	// The signals the Go runtime makes fatal (or stopping) when not notified must be Early.
	for _, s := range []syscall.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGTERM, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGCHLD, unix.SIGSYS} {
		if !slices.Contains(Early(), os.Signal(s)) {
			t.Errorf("SIG%s must be notified early", Name(s))
		}
	}
}

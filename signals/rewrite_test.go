package signals

import (
	"maps"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseRewrites(t *testing.T) {
	tests := []struct {
		name    string
		specs   []string
		want    Rewrites
		wantErr string // substring of the error; "" means no error
	}{
		{name: "none", specs: nil, want: Rewrites{}},
		{name: "names", specs: []string{"TERM:QUIT"}, want: Rewrites{unix.SIGTERM: unix.SIGQUIT}},
		{name: "prefixed lower case", specs: []string{"sigterm:sigquit"}, want: Rewrites{unix.SIGTERM: unix.SIGQUIT}},
		{name: "numbers", specs: []string{"15:3"}, want: Rewrites{unix.SIGTERM: unix.SIGQUIT}},
		{name: "drop", specs: []string{"USR1:0"}, want: Rewrites{unix.SIGUSR1: 0}},
		{name: "drop with spaces", specs: []string{" USR1 : 0 "}, want: Rewrites{unix.SIGUSR1: 0}},
		{name: "real-time", specs: []string{"RTMIN+1:RTMAX"}, want: Rewrites{35: 64}},
		{name: "comma-separated", specs: []string{"TERM:QUIT,HUP:0"}, want: Rewrites{unix.SIGTERM: unix.SIGQUIT, unix.SIGHUP: 0}},
		{name: "several specs", specs: []string{"TERM:QUIT", "INT:TERM"}, want: Rewrites{unix.SIGTERM: unix.SIGQUIT, unix.SIGINT: unix.SIGTERM}},
		{name: "later overrides", specs: []string{"TERM:QUIT", "TERM:INT"}, want: Rewrites{unix.SIGTERM: unix.SIGINT}},
		{name: "later overrides in one spec", specs: []string{"TERM:QUIT,TERM:0"}, want: Rewrites{unix.SIGTERM: 0}},
		{name: "to a never-forwarded signal", specs: []string{"TERM:KILL"}, want: Rewrites{unix.SIGTERM: unix.SIGKILL}},

		{name: "no colon", specs: []string{"TERM"}, wantErr: `"TERM"`},
		{name: "empty TO", specs: []string{"TERM:"}, wantErr: `"TERM:"`},
		{name: "empty FROM", specs: []string{":QUIT"}, wantErr: `":QUIT"`},
		{name: "empty spec", specs: []string{""}, wantErr: "FROM:TO"},
		{name: "trailing comma", specs: []string{"TERM:QUIT,"}, wantErr: "FROM:TO"},
		{name: "unknown FROM", specs: []string{"FOO:TERM"}, wantErr: "FOO"},
		{name: "unknown TO", specs: []string{"TERM:BAR"}, wantErr: "BAR"},
		{name: "FROM out of range", specs: []string{"65:TERM"}, wantErr: "65"},
		{name: "TO out of range", specs: []string{"TERM:65"}, wantErr: "65"},
		{name: "never-forwarded FROM", specs: []string{"CHLD:TERM"}, wantErr: "SIGCHLD is never forwarded"},
		{name: "never-forwarded URG", specs: []string{"URG:TERM"}, wantErr: "SIGURG is never forwarded"},
		{name: "never-forwarded 32", specs: []string{"32:TERM"}, wantErr: "never forwarded"},
		{name: "KILL cannot be caught", specs: []string{"KILL:TERM"}, wantErr: "never forwarded"},
		{name: "bad one after good one", specs: []string{"TERM:QUIT", "HUP:NOPE"}, wantErr: "NOPE"},
		{name: "bad one in a list", specs: []string{"TERM:QUIT,HUP"}, wantErr: `"HUP"`},
		{name: "two colons", specs: []string{"TERM:QUIT:HUP"}, wantErr: "QUIT:HUP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRewrites(tt.specs)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseRewrites(%q) = %v, want an error", tt.specs, got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseRewrites(%q) error %q does not contain %q", tt.specs, err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("ParseRewrites(%q) returned %v with its error, want nil", tt.specs, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRewrites(%q): %v", tt.specs, err)
			}
			if got == nil {
				t.Fatalf("ParseRewrites(%q) = nil map", tt.specs)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("ParseRewrites(%q) = %v, want %v", tt.specs, got, tt.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	rw, err := ParseRewrites([]string{"TERM:QUIT,USR1:0", "HUP:HUP"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in     syscall.Signal
		want   syscall.Signal
		wantOK bool
	}{
		{unix.SIGTERM, unix.SIGQUIT, true},
		{unix.SIGUSR1, 0, false},
		{unix.SIGHUP, unix.SIGHUP, true},
		{unix.SIGINT, unix.SIGINT, true},
		{unix.SIGQUIT, unix.SIGQUIT, true},
		{unix.SIGUSR2, unix.SIGUSR2, true},
	}
	for _, tt := range tests {
		got, ok := rw.Apply(tt.in)
		if ok != tt.wantOK || (ok && got != tt.want) {
			t.Errorf("Apply(%s) = %d, %v; want %d, %v", Name(tt.in), got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestApplyNil(t *testing.T) {
	var rw Rewrites
	for n := Min; n <= Max; n++ {
		sig := syscall.Signal(n)
		got, ok := rw.Apply(sig)
		if !ok || got != sig {
			t.Errorf("nil Rewrites: Apply(%d) = %d, %v; want %d, true", n, got, ok, n)
		}
	}
}

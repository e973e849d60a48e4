package cli

import (
	"bytes"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testVersion is the version the tests give Run.
const testVersion = "v0.0.0-test"

func TestNormalizeArgs(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{[]string{"gaffer", "--", "x"}, []string{"gaffer", "run", "--", "x"}},
		{[]string{"gaffer", "-v", "--", "x"}, []string{"gaffer", "run", "-v", "--", "x"}},
		{[]string{"gaffer", "--grace", "1s", "--", "x", "-y"}, []string{"gaffer", "run", "--grace", "1s", "--", "x", "-y"}},
		{[]string{"gaffer", "-r", "TERM:QUIT", "--", "run"}, []string{"gaffer", "run", "-r", "TERM:QUIT", "--", "run"}},
		{[]string{"gaffer", "--", "exec"}, []string{"gaffer", "run", "--", "exec"}},
		{[]string{"gaffer", "run", "--", "x"}, []string{"gaffer", "run", "--", "x"}},
		{[]string{"gaffer", "exec", "--", "x"}, []string{"gaffer", "exec", "--", "x"}},
		{[]string{"gaffer", "exec", "-u", "app", "--", "x"}, []string{"gaffer", "exec", "-u", "app", "--", "x"}},
		{[]string{"gaffer", "help"}, []string{"gaffer", "help"}},
		{[]string{"gaffer", "h"}, []string{"gaffer", "h"}},
		{[]string{"gaffer", "--version"}, []string{"gaffer", "--version"}},
		{[]string{"gaffer", "--help"}, []string{"gaffer", "--help"}},
		{[]string{"gaffer", "-h"}, []string{"gaffer", "-h"}},
		{[]string{"gaffer", "foo"}, []string{"gaffer", "foo"}},
		{[]string{"gaffer", "foo", "--", "x"}, []string{"gaffer", "foo", "--", "x"}},
		{[]string{"gaffer"}, []string{"gaffer"}},
		{[]string{}, []string{}},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		got := normalizeArgs(tt.in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("normalizeArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !slices.Equal(tt.in, in) {
			t.Errorf("normalizeArgs changed its input to %q", tt.in)
		}
	}
}

// TestNormalizeArgsKeepsCommands: every command of the app and its aliases in first position is
// left alone, flags and -- after it too.
func TestNormalizeArgsKeepsCommands(t *testing.T) {
	app := newApp(testVersion, Signals{}, io.Discard)
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Names()...)
	}
	for _, want := range []string{"run", "exec", "up", "check", "status", "logs", "shutdown"} {
		if !slices.Contains(names, want) {
			t.Errorf("the app has no command %q: %q", want, names)
		}
	}
	for _, name := range names {
		in := []string{"gaffer", name, "-v", "--", "x"}
		if got := normalizeArgs(in); !slices.Equal(got, in) {
			t.Errorf("normalizeArgs(%q) = %q, want it unchanged", in, got)
		}
	}
}

func TestRunsInit(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"gaffer", "--", "x"}, true},
		{[]string{"gaffer", "-g", "--", "x"}, true},
		{[]string{"gaffer", "-v"}, true}, // a usage error, from the run command
		{[]string{"gaffer", "run", "--", "x"}, true},
		{[]string{"gaffer", "up"}, true},
		{[]string{"gaffer", "up", "-c", "x.toml"}, true},
		{[]string{"gaffer", "exec", "--", "up"}, false},
		{[]string{"gaffer", "check"}, false},
		{[]string{"gaffer", "status"}, false},
		{[]string{"gaffer", "--version"}, false},
		{[]string{"gaffer", "--help"}, false},
		{[]string{"gaffer", "-h"}, false},
		{[]string{"gaffer", "help", "run"}, false},
		{[]string{"gaffer", "foo", "--", "run"}, false},
		{[]string{"gaffer"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := RunsInit(tt.args); got != tt.want {
			t.Errorf("RunsInit(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "10", want: 10 * time.Second},
		{in: "0", want: 0},
		{in: "0.5", want: 500 * time.Millisecond},
		{in: " 2 ", want: 2 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "5s", want: 5 * time.Second},
		{in: "0s", want: 0},
		{in: "", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-0.5", wantErr: true},
		{in: "-5s", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "10x", wantErr: true},
		{in: "s", wantErr: true},
		// Floats that are not a duration: they must not turn into a negative (or garbage) one.
		{in: "NaN", wantErr: true},
		{in: "inf", wantErr: true},
		{in: "+Inf", wantErr: true},
		{in: "1e10", wantErr: true}, // 1e19 ns overflows int64, as time.ParseDuration("1e10s") does
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseDuration(%q) = %v, want an error", tt.in, got)
			} else if !strings.Contains(err.Error(), tt.in) {
				t.Errorf("parseDuration(%q) error %q does not quote the input", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseDuration(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("parseDuration(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// clearGafferEnv keeps GAFFER_* variables of the test's environment out of the CLI.
func clearGafferEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "GAFFER_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func TestRunCLIUsageErrors(t *testing.T) {
	clearGafferEnv(t)
	tests := []struct {
		name string
		args []string
		want string // substring of the one line on stderr
	}{
		{name: "no command", args: []string{"gaffer"}, want: "no command given"},
		{name: "run without command", args: []string{"gaffer", "run"}, want: "no command given"},
		{name: "-- without command", args: []string{"gaffer", "--"}, want: "no command given"},
		{name: "flags without command", args: []string{"gaffer", "-v"}, want: "no command given"},
		{name: "bad rewrite", args: []string{"gaffer", "-r", "BAD", "--", "true"}, want: "--rewrite"},
		{name: "bad rewrite without command", args: []string{"gaffer", "-r", "BAD"}, want: "--rewrite"},
		{name: "never-forwarded rewrite", args: []string{"gaffer", "-r", "CHLD:TERM", "--", "true"}, want: "never forwarded"},
		{name: "unknown flag", args: []string{"gaffer", "--bogus", "--", "true"}, want: "bogus"},
		{name: "unknown exec flag", args: []string{"gaffer", "exec", "--bogus", "--", "true"}, want: "bogus"},
		{name: "unknown command", args: []string{"gaffer", "foo"}, want: `unknown command "foo"`},
		{name: "unknown command with args", args: []string{"gaffer", "foo", "bar"}, want: "gaffer -- foo bar"},
		{name: "bad grace", args: []string{"gaffer", "--grace", "xyz", "--", "true"}, want: "--grace"},
		{name: "negative grace", args: []string{"gaffer", "--grace", "-1s", "--", "true"}, want: "--grace"},
		{name: "bad stop-timeout", args: []string{"gaffer", "--stop-timeout", "soon", "--", "true"}, want: "--stop-timeout"},
		{name: "success-exit too big", args: []string{"gaffer", "--success-exit", "300", "--", "true"}, want: "--success-exit"},
		{name: "success-exit negative", args: []string{"gaffer", "-e", "-1", "--", "true"}, want: "--success-exit"},
		{name: "success-exit not a number", args: []string{"gaffer", "-e", "143,x", "--", "true"}, want: `"x"`},
		{name: "bad pdeathsig", args: []string{"gaffer", "--pdeathsig", "NOPE", "--", "true"}, want: "--pdeathsig"},
		{name: "unknown user", args: []string{"gaffer", "--user", "nosuchuser__", "--", "true"}, want: "nosuchuser__"},
		{name: "unknown group", args: []string{"gaffer", "-u", "root:nosuchgroup__", "--", "true"}, want: "nosuchgroup__"},
		{name: "bad env", args: []string{"gaffer", "--env", "NOEQUALS", "--", "true"}, want: "--env"},
		{name: "empty env key", args: []string{"gaffer", "--env", "=v", "--", "true"}, want: "--env"},
		{name: "missing cwd", args: []string{"gaffer", "--cwd", "/nonexistent/gaffer", "--", "true"}, want: "--cwd"},
		{name: "cwd is a file", args: []string{"gaffer", "--cwd", "/etc/passwd", "--", "true"}, want: "not a directory"},
		{name: "exec without command", args: []string{"gaffer", "exec"}, want: "no command given"},
		{name: "exec -- without command", args: []string{"gaffer", "exec", "--"}, want: "no command given"},
		{name: "exec unknown user", args: []string{"gaffer", "exec", "--user", "nosuchuser__", "--", "true"}, want: "nosuchuser__"},
		{name: "exec missing cwd", args: []string{"gaffer", "exec", "--cwd", "/nonexistent/gaffer", "--", "true"}, want: "--cwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := Run(tt.args, testVersion, Signals{C: make(chan os.Signal, 1)}, &stderr)
			if code != 2 {
				t.Errorf("Run(%q) = %d, want 2; stderr %q", tt.args, code, stderr.String())
			}
			checkOneLine(t, stderr.String(), tt.want)
		})
	}
}

// checkOneLine checks that out is exactly one line "gaffer: ..." containing want.
func checkOneLine(t *testing.T, out, want string) {
	t.Helper()
	if !strings.HasPrefix(out, "gaffer: ") || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("stderr %q, want exactly one line starting with \"gaffer: \"", out)
	}
	if !strings.Contains(out, want) {
		t.Errorf("stderr %q does not contain %q", out, want)
	}
}

func TestRunCLINotStartable(t *testing.T) {
	clearGafferEnv(t)
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		// exec fails in LookPath, before any credential change or execve.
		{name: "exec missing", args: []string{"gaffer", "exec", "--", "/nonexistent/gaffer-cmd"}, code: 127},
		{name: "exec not in PATH", args: []string{"gaffer", "exec", "--", "gaffer-no-such-command"}, code: 127},
		{name: "exec not executable", args: []string{"gaffer", "exec", "--", noexec}, code: 126},
		{name: "exec directory", args: []string{"gaffer", "exec", "--", dir}, code: 126},
		// An empty command is not found, as in a shell and as `gaffer -- ""` says.
		{name: "exec empty command", args: []string{"gaffer", "exec", "--", ""}, code: 127},
		{name: "run empty command", args: []string{"gaffer", "--", ""}, code: 127},
		// run fails in spawn.Start, before a child exists.
		{name: "run missing", args: []string{"gaffer", "--", "/nonexistent/gaffer-cmd"}, code: 127},
		{name: "run not executable", args: []string{"gaffer", "--", noexec}, code: 126},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // pid1.Run changes directory once a child started; keep ours.
			var stderr bytes.Buffer
			code := Run(tt.args, testVersion, Signals{C: make(chan os.Signal, 1)}, &stderr)
			if code != tt.code {
				t.Errorf("Run(%q) = %d, want %d; stderr %q", tt.args, code, tt.code, stderr.String())
			}
			checkOneLine(t, stderr.String(), "cannot run")
		})
	}
}

func TestRunCLIVersion(t *testing.T) {
	// The version goes to the app's Writer, os.Stdout when the app runs: catch it in a file.
	out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	saved := os.Stdout
	os.Stdout = out
	var stderr bytes.Buffer
	code := Run([]string{"gaffer", "--version"}, testVersion, Signals{}, &stderr)
	os.Stdout = saved
	if code != 0 {
		t.Errorf("--version: code %d, stderr %q", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("--version wrote to stderr: %q", stderr.String())
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if want := "gaffer " + testVersion + "\n"; string(b) != want {
		t.Errorf("--version printed %q, want %q", b, want)
	}
}

func TestRunCLIMissingSignals(t *testing.T) {
	// main must set up signals for run; without them Run refuses instead of hanging.
	clearGafferEnv(t)
	var stderr bytes.Buffer
	if code := Run([]string{"gaffer", "run", "--", "true"}, testVersion, Signals{}, &stderr); code != 2 {
		t.Errorf("run without a signal channel: code %d, want 2", code)
	}
	checkOneLine(t, stderr.String(), "signals")
}

func TestRunCLIRunsChild(t *testing.T) {
	clearGafferEnv(t)
	// pid1.Run changes the working directory of this process to /; restore it afterwards.
	t.Chdir(t.TempDir())
	tests := []struct {
		name string
		args []string
		code int
	}{
		{name: "true", args: []string{"gaffer", "--", "true"}, code: 0},
		{name: "run true", args: []string{"gaffer", "run", "--", "true"}, code: 0},
		{name: "exit code", args: []string{"gaffer", "--", "sh", "-c", "exit 7"}, code: 7},
		{name: "success-exit", args: []string{"gaffer", "-e", "7", "--", "sh", "-c", "exit 7"}, code: 0},
		{name: "success-exit list", args: []string{"gaffer", "-e", "3,7", "--", "sh", "-c", "exit 7"}, code: 0},
		{name: "killed", args: []string{"gaffer", "--", "sh", "-c", "kill -TERM $$"}, code: 143},
		{name: "env", args: []string{"gaffer", "--clear-env", "--env", "A=1", "--env", "B=x=y", "--", "/bin/sh", "-c", `test "$A,$B" = "1,x=y" && test -z "$HOME"`}, code: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// main Notifies every handled signal; the run loop needs at least SIGCHLD.
			sigs := make(chan os.Signal, 16)
			signal.Notify(sigs, syscall.SIGCHLD)
			defer signal.Stop(sigs)
			var stderr bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- Run(tt.args, testVersion, Signals{C: sigs}, &stderr) }()
			select {
			case code := <-done:
				if code != tt.code {
					t.Errorf("Run(%q) = %d, want %d; stderr %q", tt.args, code, tt.code, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Run(%q) did not return", tt.args)
			}
			if stderr.Len() != 0 {
				t.Errorf("Run(%q) wrote to stderr: %q", tt.args, stderr.String())
			}
		})
	}
}

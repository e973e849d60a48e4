package tests

// Black-box tests of readiness from output (issue 9): ready = "log:REGEX" makes a process ready
// at the first line of its output that matches, and a dependent (after = [...]) starts only then.

import (
	"fmt"
	"path/filepath"
	"testing"
)

// Contract: with ready = "log:^listening$", a dependent starts only after the process printed the
// line "listening": not at a line that does not match ("not listening yet"), and not at the first
// half of the line when it comes in two writes 200 ms apart ("list", then "ening\n"). The same on
// stdout, on stderr, and through a terminal (tty = true, whose lines end in \r\n).
func TestLogReadyGatesDependent(t *testing.T) {
	for _, tt := range []struct {
		name   string
		redir  string // the shell's redirection of web's output
		tty    bool
		stdout bool // web's lines come on gaffer's stdout
	}{
		{"stdout", "", false, true},
		{"stderr", " >&2", false, false},
		{"tty", "", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// web notes the time just before it completes the line; dep notes its start.
			procs := fmt.Sprintf(`
[process.web]
cmd = ["sh", "-c", "echo not listening yet%[1]s; sleep 0.3; printf list%[1]s; sleep 0.2; date +%%s%%N > {dir}/said; printf 'ening\\n'%[1]s; exec sleep 1000"]
ready = "log:^listening$"
tty = %[2]v
[process.dep]
cmd = ["sh", "-c", "date +%%s%%N > {dir}/dep; echo dep up; exec sleep 1000"]
after = ["web"]
`, tt.redir, tt.tty)
			a := iss9Up(t, true, "", procs, nil)
			out := newIss9Log(a.gafferRun)
			started := out.event(-1, "web started (pid ")
			ready := out.event(started, "web ready")
			out.event(ready, "dep started (pid ")
			out.await(-1, "dep", "dep up") // output and events are written apart: no order between them
			if tt.stdout {
				// The two writes make one line, after the line that did not match. Output may come
				// before the event of its start (events and output are written apart), so from
				// the top.
				first := out.await(-1, "web", "not listening yet")
				if i := out.await(first, "web", ""); out.lines[i] != "web | listening" {
					t.Fatalf("the line came as %q, want %q:\n%s", out.lines[i], "web | listening", out)
				}
			}
			if i := out.find(-1, "gaffer", "dep started"); i < ready {
				t.Fatalf("dep started before web was ready:\n%s", out)
			}
			said := iss9Times(t, filepath.Join(a.dir, "said"))
			dep := iss9Times(t, filepath.Join(a.dir, "dep"))
			if len(said) != 1 || len(dep) != 1 || dep[0].Before(said[0]) {
				t.Fatalf("dep started at %v, before web completed its line at %v", dep, said)
			}
			if p := a.iss9Proc("web"); p.State != "ready" {
				t.Fatalf("web is %q, want ready", p.State)
			}
			out.stop()
		})
	}
}

// Contract: a process whose output never matches stays not ready, its dependent never starts,
// and level ready fails naming it; it becomes ready when the line finally comes.
func TestLogReadyNoMatchHoldsDependent(t *testing.T) {
	a := iss9Up(t, true, "", `
[process.web]
cmd = ["sh", "-c", "echo booting; while [ ! -e {dir}/go ]; do sleep 0.05; done; echo now serving; exec sleep 1000"]
ready = "log:serving$"
[process.dep]
cmd = "sh -c 'echo dep up; exec sleep 1000'"
after = ["web"]
`, nil)
	out := newIss9Log(a.gafferRun)
	booted := out.await(-1, "web", "booting")
	if p := a.iss9Proc("web"); p.State != "starting" {
		t.Fatalf("web is %q after a line that does not match, want starting", p.State)
	}
	if p := a.iss9Proc("dep"); p.State != "pending" || p.Pid != 0 {
		t.Fatalf("dep is %q (pid %d) before web is ready, want pending", p.State, p.Pid)
	}
	if r := a.iss9Health("ready"); r.status != 503 || r.OK {
		t.Fatalf("level ready while web is not: %d %s", r.status, r.raw)
	}
	iss9Touch(t, filepath.Join(a.dir, "go"))
	ready := out.event(booted, "web ready")
	out.event(ready, "dep started (pid ")
	if i := out.find(-1, "gaffer", "dep started"); i < ready {
		t.Fatalf("dep started before web was ready:\n%s", out)
	}
	a.iss9WaitProc("dep", "running", func(p iss9Proc) bool { return p.State == "running" || p.State == "ready" })
	out.stop()
}

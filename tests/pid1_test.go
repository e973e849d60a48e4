package tests

import (
	"fmt"
	"gaffer/internal/testutil"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gaffer/signals"

	"golang.org/x/sys/unix"
)

func TestExitCodesPassThrough(t *testing.T) {
	needRoot(t)
	for n := 0; n <= 255; n++ {
		code, _, stderr := runGaffer(t, startOpts{pid1: true}, "--", "sh", "-c", "exit "+strconv.Itoa(n))
		if code != n {
			t.Fatalf("child exit %d: gaffer exited %d; stderr %q", n, code, stderr)
		}
	}
}

func TestDeathBySignalIs128PlusN(t *testing.T) {
	needRoot(t)
	for _, sig := range []string{"TERM", "KILL", "HUP", "QUIT", "INT", "USR1"} {
		s, _ := signals.Parse(sig)
		code, _, stderr := runGaffer(t, startOpts{pid1: true}, "--", "sh", "-c", "kill -"+sig+" $$")
		if code != 128+int(s) {
			t.Errorf("child killed by SIG%s: gaffer exited %d, want %d; stderr %q", sig, code, 128+int(s), stderr)
		}
	}
}

func TestCannotStartCodes(t *testing.T) {
	dir := t.TempDir()
	noexec := dir + "/script"
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		argv []string
		code int
		msg  string
	}{
		{[]string{"no-such-command-xyz"}, 127, `cannot run "no-such-command-xyz": not found in PATH`},
		{[]string{"/no/such/file"}, 127, `cannot run "/no/such/file": no such file`},
		{[]string{noexec}, 126, "not executable"},
		{[]string{dir}, 126, "is a directory"},
	}
	for _, c := range cases {
		code, _, stderr := runGaffer(t, startOpts{}, append([]string{"--"}, c.argv...)...)
		if code != c.code || !strings.Contains(stderr, c.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d stderr %q; want exit %d and one line with %q", c.argv, code, stderr, c.code, c.msg)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := [][]string{
		{},
		{"--"},
		{"--bogus", "--", "true"},
		{"-r", "TERM", "--", "true"},
		{"-r", "NOPE:TERM", "--", "true"},
		{"-r", "CHLD:TERM", "--", "true"},
		{"-e", "x", "--", "true"},
		{"--grace", "soon", "--", "true"},
		{"--stop-timeout", "-1", "--", "true"},
		{"-p", "NOPE", "--", "true"},
		{"-u", "no-such-user-xyz", "--", "true"},
		{"--cwd", "/no/such/dir", "--", "true"},
		{"--env", "NOEQUALS", "--", "true"},
		{"true"},
		{"exec"},
		{"exec", "--user", "no-such-user-xyz", "--", "true"},
	}
	for _, args := range cases {
		code, stdout, stderr := runGaffer(t, startOpts{}, args...)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "gaffer: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("gaffer %q: exit %d stdout %q stderr %q; want 2 and one line on stderr", args, code, stdout, stderr)
		}
	}
}

// forwardable lists the signals 1-31 that gaffer forwards as themselves.
func forwardable() (fwd, never []syscall.Signal) {
	for n := 1; n <= 31; n++ {
		s := syscall.Signal(n)
		switch {
		case s == unix.SIGKILL || s == unix.SIGSTOP:
		case signals.NeverForward(s):
			never = append(never, s)
		default:
			fwd = append(fwd, s)
		}
	}
	return fwd, never
}

func TestSignalsForwardedAsThemselves(t *testing.T) {
	g := startGaffer(t, startOpts{pid1: true, stdin: true}, "-v", "--", probeBin, "signals")
	g.expectLine("ready", 10*time.Second)
	g.waitAllSignals()
	fwd, never := forwardable()
	if len(fwd) != 18 {
		t.Fatalf("expected 18 forwardable signals in 1-31, have %v", fwd)
	}
	rt := []syscall.Signal{signals.RTMin + 1, signals.RTMin + 5, signals.RTMax - 1, signals.RTMax}
	for _, s := range append(fwd, rt...) {
		g.signal(s)
		if got := g.nextLineOr(5*time.Second, "SIG"+signals.Name(s)); got != "got "+signals.Name(s) {
			t.Fatalf("sent SIG%s to gaffer; child reported %q", signals.Name(s), got)
		}
	}
	// The never-forward set must not reach the child, nor kill gaffer: a marker sent after each
	// must be the next thing the child reports.
	for _, s := range never {
		g.signal(s)
		g.signal(unix.SIGUSR2)
		if got := g.nextLine(5 * time.Second); got != "got USR2" {
			t.Fatalf("sent SIG%s then SIGUSR2; child reported %q first", signals.Name(s), got)
		}
	}
	g.stdin.Close()
	if code := g.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0; stderr %s", code, g.stderr.String())
	}
}

func TestRewriteAndDrop(t *testing.T) {
	g := startGaffer(t, startOpts{pid1: true, stdin: true}, "-v", "-r", "TERM:USR1", "-r", "HUP:0,WINCH:RTMIN+2", "--", probeBin, "signals")
	g.expectLine("ready", 10*time.Second)
	g.waitAllSignals()
	g.signal(unix.SIGTERM)
	if got := g.nextLine(5 * time.Second); got != "got USR1" {
		t.Fatalf("TERM rewritten to USR1: child reported %q", got)
	}
	g.signal(unix.SIGWINCH)
	if got := g.nextLine(5 * time.Second); got != "got RTMIN+2" {
		t.Fatalf("WINCH rewritten to RTMIN+2: child reported %q", got)
	}
	g.signal(unix.SIGHUP)
	g.signal(unix.SIGUSR2)
	if got := g.nextLine(5 * time.Second); got != "got USR2" {
		t.Fatalf("HUP dropped: child reported %q before USR2", got)
	}
	g.stdin.Close()
	if code := g.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
}

func TestSuccessExitMapping(t *testing.T) {
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"-e", "143", "--", "sh", "-c", "kill $$"}, 0},
		{[]string{"-e", "3", "-e", "4", "--", "sh", "-c", "exit 4"}, 0},
		{[]string{"-e", "3,9", "--", "sh", "-c", "exit 9"}, 0},
		{[]string{"-e", "3", "--", "sh", "-c", "exit 5"}, 5},
	}
	for _, c := range cases {
		if code, _, stderr := runGaffer(t, startOpts{}, c.args...); code != c.want {
			t.Errorf("gaffer %q: exit %d, want %d; stderr %q", c.args, code, c.want, stderr)
		}
	}
	code, _, _ := runGaffer(t, startOpts{env: []string{"GAFFER_SUCCESS_EXIT=7"}}, "--", "sh", "-c", "exit 7")
	if code != 0 {
		t.Errorf("GAFFER_SUCCESS_EXIT=7 and exit 7: gaffer exited %d, want 0", code)
	}
}

func TestGroupForwarding(t *testing.T) {
	// sh ignores USR1 so that only its background child can report it.
	// Without job control sh gives background jobs /dev/null as stdin; hand it the real one by fd 3.
	script := `trap "" USR1; exec 3<&0; "$0" signals <&3 3<&- & wait`
	g := startGaffer(t, startOpts{pid1: true, stdin: true}, "-v", "-g", "--", "sh", "-c", script, probeBin)
	g.expectLine("ready", 10*time.Second)
	g.waitAllSignals()
	g.signal(unix.SIGUSR1)
	if got := g.nextLine(5 * time.Second); got != "got USR1" {
		t.Fatalf("-g: the child's group member reported %q", got)
	}
	g.stdin.Close()
	if code := g.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Without -g only the child itself (sh, which ignores it) gets the signal.
	g = startGaffer(t, startOpts{pid1: true, stdin: true}, "-v", "--", "sh", "-c", script, probeBin)
	g.expectLine("ready", 10*time.Second)
	g.waitAllSignals()
	g.signal(unix.SIGUSR1)
	g.stdin.Close()
	var rest []string
	for l := range g.lines {
		rest = append(rest, l)
	}
	if code := g.wait(10 * time.Second); code != 0 || len(rest) != 0 {
		t.Fatalf("without -g: exit %d, group member reported %q; want 0 and nothing", code, rest)
	}
}

// nsProcesses lists the processes in the PID namespace of pid (host pids), with their states.
func nsProcesses(pid int) map[int]byte {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return nil
	}
	out := map[int]byte{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err != nil || l != ns {
			continue
		}
		if st := procState(p); st != 0 {
			out[p] = st
		}
	}
	return out
}

// childrenOf lists the children of pid from /proc.
func childrenOf(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// procState is the state letter of pid (R, S, Z, T ...), or 0 when it is gone.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

func TestOrphansReaped(t *testing.T) {
	const n = 2000
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do (true &); i=$((i+1)); done; echo spawned; exec "$0" signals`, n)
	g := startGaffer(t, startOpts{pid1: true, stdin: true}, "-v", "--", "sh", "-c", script, probeBin)
	g.expectLine("spawned", 60*time.Second)
	g.expectLine("ready", 10*time.Second)
	gpid := g.cmd.Process.Pid
	zombies := func() int {
		z := 0
		for _, st := range nsProcesses(gpid) {
			if st == 'Z' {
				z++
			}
		}
		return z
	}
	testutil.WaitFor(t, 20*time.Second, "no zombies in the namespace", func() bool { return zombies() == 0 })
	g.stdin.Close()
	if code := g.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	reaped := 0
	for _, l := range strings.Split(g.stderr.String(), "\n") {
		var k int
		if _, err := fmt.Sscanf(l, "gaffer: reaped %d orphans", &k); err == nil {
			reaped += k
		}
	}
	if reaped != n {
		t.Fatalf("gaffer reports %d orphans reaped, want %d", reaped, n)
	}
}

func TestLeftoversGetTermAndGaffersExitsPromptly(t *testing.T) {
	// The leftover exits at once on SIGTERM: gaffer must not wait out a long grace. It is a probe
	// that reports its handler in place before the child can exit, not a shell background job:
	// dash loses a SIGTERM that arrives between the fork of `cmd &` and its exec, and the
	// leftover then rightly keeps gaffer waiting for the whole grace.
	start := time.Now()
	g := startGaffer(t, startOpts{pid1: true, stdin: true}, "--grace", "60s", "--", probeBin, "leftover", "term", "5")
	if line := g.nextLine(10 * time.Second); !strings.HasPrefix(line, "leftover=") {
		t.Fatalf("bad line %q; stderr %s", line, g.stderr.String())
	}
	g.stdin.Close()
	g.expectLine("leftover got TERM", 10*time.Second)
	if code := g.wait(20 * time.Second); code != 5 {
		t.Fatalf("exit %d, want the child's 5", code)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("gaffer took %v: it waited out the grace although nothing was left", took)
	}
}

func TestStubbornLeftoversGetKilledAfterGrace(t *testing.T) {
	for _, asPID1 := range []bool{true, false} {
		t.Run(fmt.Sprintf("pid1=%v", asPID1), func(t *testing.T) {
			// The probe exits only once its leftover ignores SIGTERM: a shell's
			// `( trap '' TERM; ... ) &` could still be without its trap when gaffer signals it.
			g := startGaffer(t, startOpts{pid1: asPID1}, "-v", "--grace", "300ms", "--", probeBin, "leftover", "ignore", "5")
			line := g.nextLine(10 * time.Second)
			var leftover int
			if _, err := fmt.Sscanf(line, "leftover=%d", &leftover); err != nil {
				t.Fatalf("bad line %q; stderr %s", line, g.stderr.String())
			}
			t.Cleanup(func() { killLeftover(leftover) })
			if code := g.wait(20 * time.Second); code != 5 {
				t.Fatalf("exit %d, want 5; stderr %s", code, g.stderr.String())
			}
			if !strings.Contains(g.stderr.String(), "SIGKILL") {
				t.Fatalf("gaffer did not report escalating to SIGKILL: %s", g.stderr.String())
			}
			if !asPID1 {
				// Not PID 1: the leftover is a host process that gaffer had to find and kill.
				testutil.WaitFor(t, 5*time.Second, "leftover gone", func() bool {
					st := procState(leftover)
					return st == 0 || st == 'Z'
				})
			}
		})
	}
}

// killLeftover SIGKILLs pid if it is still a probe's leftover (outside a PID namespace nothing
// else would end one that gaffer failed to kill).
func killLeftover(pid int) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), "leftover-child") {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

func TestStopTimeoutKillsGroup(t *testing.T) {
	script := `trap '' TERM; echo ready; while :; do sleep 0.05; done`
	g := startGaffer(t, startOpts{pid1: true}, "--stop-timeout", "300ms", "--", "sh", "-c", script)
	g.expectLine("ready", 10*time.Second)
	g.signal(unix.SIGTERM)
	if code := g.wait(20 * time.Second); code != 128+9 {
		t.Fatalf("exit %d, want 137 (child SIGKILLed after the stop timeout)", code)
	}
}

func TestChildStartsWithEmptyMaskAndDefaultDispositions(t *testing.T) {
	grep := []string{"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"}
	// Without gaffer the probe's blocked and ignored signals reach grep: the test can see them.
	_, direct, _ := runCmd(t, append([]string{probeBin, "blockexec", "/usr/bin/env"}, grep...)...)
	if !strings.Contains(direct, "SigBlk:\t0000000000004a00") {
		t.Fatalf("probe blockexec did not block USR1/USR2/TERM: %q", direct)
	}
	_, through, stderr := runCmd(t, append([]string{probeBin, "blockexec", gafferBin, "--"}, grep...)...)
	want := "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000"
	if through != want {
		t.Fatalf("child of gaffer: %q, want %q; stderr %s", through, want, stderr)
	}
}

func TestChildKeepsCwdGafferMovesToRoot(t *testing.T) {
	dir := t.TempDir()
	script := `pwd; for i in $(seq 200); do [ "$(readlink /proc/$PPID/cwd)" = / ] && break; sleep 0.02; done; readlink /proc/$PPID/cwd`
	code, out, stderr := runGaffer(t, startOpts{dir: dir}, "--", "sh", "-c", script)
	if code != 0 || out != dir+"\n/" {
		t.Fatalf("exit %d out %q stderr %q; want the child in %s and gaffer in /", code, out, stderr, dir)
	}
}

func TestRunIdentityAndEnvironment(t *testing.T) {
	needRoot(t)
	code, out, stderr := runGaffer(t, startOpts{env: []string{"KEEP=1"}}, "-u", "nobody", "--cwd", "/tmp", "--env", "FOO=a,b", "--",
		"sh", "-c", `id -u; id -g; pwd; echo "$FOO $KEEP $HOME"`)
	if want := "65534\n65534\n/tmp\na,b 1 /nonexistent"; code != 0 || out != want {
		t.Fatalf("exit %d out %q stderr %q; want %q", code, out, stderr, want)
	}
	code, out, _ = runGaffer(t, startOpts{env: []string{"KEEP=1"}}, "--clear-env", "--env", "A=1", "--", "/usr/bin/env")
	if code != 0 || out != "A=1" {
		t.Fatalf("--clear-env: exit %d env %q, want only A=1", code, out)
	}
	code, out, _ = runGaffer(t, startOpts{env: []string{"GAFFER_USER=nobody", "GAFFER_CWD=/usr"}}, "--", "sh", "-c", "id -u; pwd")
	if code != 0 || out != "65534\n/usr" {
		t.Fatalf("GAFFER_USER/GAFFER_CWD: exit %d out %q", code, out)
	}
}

func TestPdeathsig(t *testing.T) {
	// The parent shell starts gaffer in the background and is then killed: gaffer gets USR1 and
	// forwards it to its child.
	// With -v, so that the test can wait until gaffer handles USR1: it is notified only once the
	// child started, and dropped before.
	script := `"$0" -v -p USR1 -- "$1" signals keep & echo gaffer=$!; wait`
	run := startGafferVia(t, []string{"sh", "-c", script, gafferBin, probeBin})
	// The shell's echo and the probe's "ready" race: take them in either order.
	gpid, ready := 0, false
	for gpid == 0 || !ready {
		line := run.nextLineOr(10*time.Second, `"gaffer=PID" and "ready"`)
		if line == "ready" {
			ready = true
		} else if _, err := fmt.Sscanf(line, "gaffer=%d", &gpid); err != nil {
			t.Fatalf("bad line %q", line)
		}
	}
	run.waitAllSignals()
	kids := childrenOf(gpid)
	if len(kids) != 1 {
		t.Fatalf("gaffer has children %v, want one probe", kids)
	}
	// The probe never exits on its own: SIGKILL it, which ends gaffer too, whatever happens.
	t.Cleanup(func() { _ = unix.Kill(kids[0], unix.SIGKILL) })
	_ = run.cmd.Process.Kill()
	run.expectLine("got USR1", 10*time.Second)
	_ = unix.Kill(kids[0], unix.SIGKILL)
	testutil.WaitFor(t, 10*time.Second, "gaffer gone", func() bool { st := procState(gpid); return st == 0 || st == 'Z' })
}

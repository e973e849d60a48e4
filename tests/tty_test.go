package tests

// Terminal and job-control tests: gaffer started on a pseudo-terminal as the session leader that
// owns it (as `docker run -it` does), with and without a PID namespace.

import (
	"fmt"
	"gaffer/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ttyWait bounds every wait for output, a process state or an exit in these tests. Nothing waits
// for something not to happen, so it is only as long as a busy machine needs: with two cpus spun
// and other tests running, 5 s was too short to see gaffer's child print its first line.
const ttyWait = 30 * time.Second

// ttyRun is a process started by a test as the session leader of a fresh pty, whose output is
// read from the master side.
type ttyRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	master *os.File
	out    *testutil.SyncBuffer // everything read from the master
	done   chan struct{}
	code   int // exit code once done is closed; 128+n when killed by signal n
}

// ttyOpts say how startTTY starts its process.
type ttyOpts struct {
	pid1  bool     // PID 1 of a new PID namespace (needs root)
	env   []string // extra environment
	noTTY bool     // a new session with the pty on fds 0-2 that is NOT its controlling terminal
}

// startTTY starts argv (argv[0] is a path) with stdin, stdout and stderr on the slave side of a
// new pty, in a new session whose controlling terminal that pty is. At the end of the test every
// process of the session is killed.
func startTTY(t *testing.T, o ttyOpts, argv ...string) *ttyRun {
	t.Helper()
	if o.pid1 {
		needRoot(t)
	}
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: 24, Cols: 200}); err != nil {
		t.Fatalf("set pty size: %v", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: !o.noTTY, Ctty: 0}
	if o.pid1 {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		t.Fatalf("start %q: %v", argv, err)
	}
	// Only the child holds the slave now: the master reads EIO once the session is gone.
	slave.Close()
	r := &ttyRun{t: t, cmd: cmd, master: master, out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			_, _ = r.out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		r.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		sid := cmd.Process.Pid
		// Twice: a process may have been forking while the first pass ran.
		for range 2 {
			for _, p := range ttySession(sid) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		_ = cmd.Process.Kill()
		select {
		case <-r.done:
		case <-time.After(ttyWait):
			t.Errorf("pid %d did not exit after SIGKILL", sid)
		}
		if t.Failed() {
			t.Logf("terminal output of %q:\n%q", argv, r.out.String())
		}
		master.Close()
		select {
		case <-readDone:
		case <-time.After(ttyWait):
			t.Errorf("pty reader did not stop")
		}
	})
	return r
}

// write types s on the terminal.
func (r *ttyRun) write(s string) {
	r.t.Helper()
	if _, err := r.master.Write([]byte(s)); err != nil {
		r.t.Fatalf("write %q to the pty: %v", s, err)
	}
}

// expect waits until the terminal output matches re, and returns the submatches of the first
// match.
func (r *ttyRun) expect(re string) []string {
	r.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(ttyWait)
	for {
		if m := rx.FindStringSubmatch(r.out.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no output matching %q within %v; terminal output:\n%s", re, ttyWait, r.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wait waits for the process to exit and returns its exit code.
func (r *ttyRun) wait() int {
	r.t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(ttyWait):
		r.t.Fatalf("pid %d still running after %v; terminal output:\n%s", r.cmd.Process.Pid, ttyWait, r.out.String())
	}
	return -1
}

// ttyStat is the part of /proc/PID/stat these tests look at (proc(5)). Pids are as the test sees
// them, in the host's PID namespace.
type ttyStat struct {
	pid     int
	comm    string
	state   byte
	ppid    int
	pgrp    int
	session int
	ttyNr   int
	tpgid   int // foreground process group of the controlling terminal, -1 without one
}

func readTTYStat(pid int) (ttyStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ttyStat{}, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return ttyStat{}, fmt.Errorf("/proc/%d/stat: cannot parse %q", pid, s)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 6 || len(f[0]) != 1 {
		return ttyStat{}, fmt.Errorf("/proc/%d/stat: cannot parse %q", pid, s)
	}
	st := ttyStat{pid: pid, comm: s[open+1 : end], state: f[0][0]}
	for i, p := range []*int{&st.ppid, &st.pgrp, &st.session, &st.ttyNr, &st.tpgid} {
		if *p, err = strconv.Atoi(f[i+1]); err != nil {
			return ttyStat{}, fmt.Errorf("/proc/%d/stat: field %d: %v", pid, i+4, err)
		}
	}
	return st, nil
}

func mustTTYStat(t *testing.T, pid int) ttyStat {
	t.Helper()
	st, err := readTTYStat(pid)
	if err != nil {
		t.Fatalf("stat of pid %d: %v", pid, err)
	}
	return st
}

// ttyChildren lists the children of pid, read from every thread's children file: a Go program
// forks from whichever thread it runs on.
func ttyChildren(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(w); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// ttyOnlyChild waits until pid has exactly one child running the program comm, and returns it.
func ttyOnlyChild(t *testing.T, pid int, comm string) int {
	t.Helper()
	var found []int
	testutil.WaitFor(t, ttyWait, fmt.Sprintf("pid %d to have one child %q", pid, comm), func() bool {
		found = found[:0]
		for _, c := range ttyChildren(pid) {
			if st, err := readTTYStat(c); err == nil && st.comm == comm {
				found = append(found, c)
			}
		}
		return len(found) == 1
	})
	return found[0]
}

// ttySession lists the processes of session sid.
func ttySession(sid int) []int {
	dirs, _ := os.ReadDir("/proc")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if st, err := readTTYStat(pid); err == nil && st.session == sid {
			out = append(out, pid)
		}
	}
	return out
}

// ttyKillTree SIGKILLs every descendant of pid (not pid itself).
func ttyKillTree(pid int) {
	for _, c := range ttyChildren(pid) {
		_ = syscall.Kill(c, syscall.SIGSTOP) // no more forks while its children are collected
		ttyKillTree(c)
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
}

// ttyModes are the two ways gaffer runs: as PID 1 of a new PID namespace, and as a plain child.
var ttyModes = []struct {
	name string
	pid1 bool
}{{"pid1", true}, {"not-pid1", false}}

// TestTTYCtrlC types Ctrl-C on gaffer's terminal: the child's process group is the foreground one,
// so the child gets SIGINT from the terminal, and gaffer gets nothing to forward.
func TestTTYCtrlC(t *testing.T) {
	for _, m := range ttyModes {
		t.Run(m.name, func(t *testing.T) {
			r := startTTY(t, ttyOpts{pid1: m.pid1}, gafferBin, "-v", "--", "sh", "-c",
				`trap "echo got-INT; exit 42" INT; echo ready; while :; do sleep 0.1; done`)
			r.expect(`ready\r?\n`)
			gpid := r.cmd.Process.Pid
			child := ttyOnlyChild(t, gpid, "sh")
			g, c := mustTTYStat(t, gpid), mustTTYStat(t, child)
			if g.session != gpid || g.pgrp != gpid {
				t.Errorf("gaffer pid %d: session %d, pgrp %d; want both %d (test setup)", gpid, g.session, g.pgrp, gpid)
			}
			if c.pgrp != child {
				t.Errorf("child pid %d is in process group %d, want its own", child, c.pgrp)
			}
			if c.pgrp == g.pgrp {
				t.Errorf("child and gaffer share process group %d", c.pgrp)
			}
			if c.session != g.session || c.ttyNr != g.ttyNr {
				t.Errorf("child session %d tty %d, gaffer session %d tty %d: want the same", c.session, c.ttyNr, g.session, g.ttyNr)
			}
			if c.tpgid != c.pgrp || g.tpgid != c.pgrp {
				t.Errorf("terminal foreground group: %d (seen by child), %d (seen by gaffer); want the child's group %d", c.tpgid, g.tpgid, c.pgrp)
			}
			r.write("\x03")
			r.expect(`got-INT\r?\n`)
			if code := r.wait(); code != 42 {
				t.Errorf("gaffer exit code %d, want 42; terminal output:\n%s", code, r.out.String())
			}
			out := r.out.String()
			// With -v gaffer logs every signal it receives. It is not in the foreground group, so
			// the terminal's SIGINT must not have reached it (the child would have got it twice).
			if !strings.Contains(out, "gaffer: started pid") {
				t.Errorf("no debug output from gaffer -v; terminal output:\n%s", out)
			}
			if strings.Contains(out, "SIGINT") {
				t.Errorf("gaffer received the terminal's SIGINT itself; terminal output:\n%s", out)
			}
		})
	}
}

// TestTTYJobControlBash runs an interactive bash under gaffer: it must find itself in the
// terminal's foreground group and so get job control.
func TestTTYJobControlBash(t *testing.T) {
	r := startTTY(t, ttyOpts{pid1: true, env: []string{"PS1=$ ", "TERM=dumb", "HISTFILE="}},
		gafferBin, "--", "/bin/bash", "--norc", "--noprofile", "-i")
	gpid := r.cmd.Process.Pid
	r.expect(`\$ `)
	r.write("echo flags=$-\n")
	flags := r.expect(`flags=([A-Za-z]+)\r?\n`)[1]
	if !strings.Contains(flags, "m") {
		t.Errorf("bash $- is %q: no job control (m)", flags)
	}
	r.write("sleep 30 &\n")
	r.expect(`\[1\] \d+\r?\n`)
	bash := ttyOnlyChild(t, gpid, "bash")
	job := ttyOnlyChild(t, bash, "sleep")
	b, j := mustTTYStat(t, bash), mustTTYStat(t, job)
	if b.pgrp != bash || b.tpgid != bash {
		t.Errorf("bash pid %d: process group %d, terminal foreground group %d; want both its own", bash, b.pgrp, b.tpgid)
	}
	if j.pgrp != job {
		t.Errorf("background job pid %d in process group %d, want its own (bash job control)", job, j.pgrp)
	}
	r.write("jobs\n")
	r.expect(`\[1\]\+\s+Running\s+sleep 30 &`)
	r.write("kill %1\n")
	testutil.WaitFor(t, ttyWait, "the background job to be killed", func() bool {
		st, err := readTTYStat(job)
		return err != nil || st.state == 'Z'
	})
	r.write("exit 7\n")
	if code := r.wait(); code != 7 {
		t.Errorf("gaffer exit code %d, want 7", code)
	}
	out := r.out.String()
	for _, bad := range []string{"no job control", "cannot set terminal process group", "Inappropriate ioctl"} {
		if strings.Contains(out, bad) {
			t.Errorf("bash complained %q; terminal output:\n%s", bad, out)
		}
	}
}

// TestTTYStopContinue sends the terminal stop signals to gaffer: it forwards them (the child
// stops) and never stops itself; SIGCONT resumes the child.
func TestTTYStopContinue(t *testing.T) {
	const script = `echo ready; while :; do sleep 0.1; done`
	for _, sig := range []syscall.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU} {
		t.Run("pty-pid1/"+ttySigName(sig), func(t *testing.T) {
			r := startTTY(t, ttyOpts{pid1: true}, gafferBin, "--", "sh", "-c", script)
			r.expect(`ready\r?\n`)
			gpid := r.cmd.Process.Pid
			ttyStopContinue(t, gpid, ttyOnlyChild(t, gpid, "sh"), sig)
			if code := r.wait(); code != 143 {
				t.Errorf("gaffer exit code %d, want 143; terminal output:\n%s", code, r.out.String())
			}
		})
		t.Run("pipe-not-pid1/"+ttySigName(sig), func(t *testing.T) {
			g := startGaffer(t, startOpts{}, "--", "sh", "-c", script)
			gpid := g.cmd.Process.Pid
			// Runs before startGaffer's cleanup kills gaffer, which would leave the tree behind. Once
			// gaffer has been waited for, its pid may belong to someone else: leave it alone then.
			t.Cleanup(func() {
				select {
				case <-g.done:
				default:
					ttyKillTree(gpid)
				}
			})
			g.expectLine("ready", ttyWait)
			ttyStopContinue(t, gpid, ttyOnlyChild(t, gpid, "sh"), sig)
			if code := g.wait(ttyWait); code != 143 {
				t.Errorf("gaffer exit code %d, want 143; stderr: %s", code, g.stderr.String())
			}
		})
	}
}

// ttyStopContinue sends sig to gaffer and checks the child stops and gaffer does not, then SIGCONT
// and checks the child runs again, then SIGTERM.
func ttyStopContinue(t *testing.T, gpid, child int, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(gpid, sig); err != nil {
		t.Fatalf("kill gaffer: %v", err)
	}
	testutil.WaitFor(t, ttyWait, fmt.Sprintf("the child to stop on %s sent to gaffer", ttySigName(sig)), func() bool {
		if st := mustTTYStat(t, gpid); st.state == 'T' || st.state == 't' {
			t.Fatalf("gaffer itself stopped (state %c) on %s", st.state, ttySigName(sig))
		}
		return mustTTYStat(t, child).state == 'T'
	})
	if st := mustTTYStat(t, gpid); st.state == 'T' || st.state == 't' {
		t.Errorf("gaffer is stopped (state %c) after %s", st.state, ttySigName(sig))
	}
	if err := syscall.Kill(gpid, syscall.SIGCONT); err != nil {
		t.Fatalf("kill gaffer: %v", err)
	}
	testutil.WaitFor(t, ttyWait, "the child to run again after SIGCONT sent to gaffer", func() bool {
		return mustTTYStat(t, child).state != 'T'
	})
	if st := mustTTYStat(t, gpid); st.state == 'T' || st.state == 't' {
		t.Errorf("gaffer is stopped (state %c) after SIGCONT", st.state)
	}
	if err := syscall.Kill(gpid, syscall.SIGTERM); err != nil {
		t.Fatalf("kill gaffer: %v", err)
	}
}

func ttySigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTSTP:
		return "SIGTSTP"
	case syscall.SIGTTIN:
		return "SIGTTIN"
	case syscall.SIGTTOU:
		return "SIGTTOU"
	}
	return "signal " + strconv.Itoa(int(sig))
}

// ttyGroupsScript prints the child's pid, its process group and its parent's (gaffer's), then
// exits 3. In a PID namespace /proc is the host's, so it runs only outside one.
const ttyGroupsScript = `echo "groups $$ $(cut -d" " -f5 /proc/$$/stat) $(cut -d" " -f5 /proc/$PPID/stat)"; exit 3`

// TestTTYNotATerminal runs gaffer without a controlling terminal on stdin: the child still runs
// in its own process group and its exit code comes back.
func TestTTYNotATerminal(t *testing.T) {
	checkGroups := func(t *testing.T, out string) {
		t.Helper()
		m := regexp.MustCompile(`groups (\d+) (\d+) (\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no groups line in %q", out)
		}
		if m[1] != m[2] {
			t.Errorf("child pid %s is in process group %s, want its own", m[1], m[2])
		}
		if m[2] == m[3] {
			t.Errorf("child shares process group %s with gaffer", m[2])
		}
	}
	t.Run("devnull", func(t *testing.T) {
		// startGaffer gives gaffer /dev/null as stdin.
		code, out, stderr := runGaffer(t, startOpts{}, "--", "sh", "-c", ttyGroupsScript)
		if code != 3 {
			t.Fatalf("exit code %d, want 3; stderr %s", code, stderr)
		}
		checkGroups(t, out)
	})
	t.Run("devnull-pid1", func(t *testing.T) {
		code, _, stderr := runGaffer(t, startOpts{pid1: true}, "--", "sh", "-c", "exit 3")
		if code != 3 {
			t.Fatalf("exit code %d, want 3; stderr %s", code, stderr)
		}
	})
	t.Run("pty-not-controlling", func(t *testing.T) {
		// A terminal on stdin that is not gaffer's controlling terminal must be left alone.
		r := startTTY(t, ttyOpts{noTTY: true}, gafferBin, "--", "sh", "-c", ttyGroupsScript)
		if code := r.wait(); code != 3 {
			t.Fatalf("exit code %d, want 3; terminal output:\n%s", code, r.out.String())
		}
		checkGroups(t, r.expect(`groups \d+ \d+ \d+`)[0])
	})
}

// TestTTYBackgroundJob starts gaffer as a background job of a job-control shell: its terminal is
// its controlling terminal but another group has the foreground, so the child must not take it.
func TestTTYBackgroundJob(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "go")
	const script = `set -m
"$G" -- sh -c 'echo bg-ready; while [ ! -e "$F" ]; do sleep 0.05; done; exit 5' &
wait $!
echo "code=$?"
`
	r := startTTY(t, ttyOpts{env: []string{"G=" + gafferBin, "F=" + flag}},
		"/bin/bash", "--norc", "--noprofile", "-c", script)
	r.expect(`bg-ready\r?\n`)
	shell := r.cmd.Process.Pid
	gpid := ttyOnlyChild(t, shell, "gaffer")
	child := ttyOnlyChild(t, gpid, "sh")
	s, g, c := mustTTYStat(t, shell), mustTTYStat(t, gpid), mustTTYStat(t, child)
	if s.pgrp != shell || g.pgrp != gpid || g.session != shell {
		t.Fatalf("shell pid %d in group %d, gaffer pid %d in group %d of session %d: want gaffer a background job of the shell (test setup)", shell, s.pgrp, gpid, g.pgrp, g.session)
	}
	if c.pgrp != child {
		t.Errorf("child pid %d in process group %d, want its own", child, c.pgrp)
	}
	if s.tpgid != s.pgrp || c.tpgid != s.pgrp {
		t.Errorf("terminal foreground group is %d, want the shell's %d still (gaffer's %d, child's %d)", c.tpgid, s.pgrp, g.pgrp, c.pgrp)
	}
	for _, st := range []ttyStat{g, c} {
		if st.state == 'T' || st.state == 't' {
			t.Errorf("pid %d (%s) is stopped", st.pid, st.comm)
		}
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.expect(`code=5\r?\n`)
	if code := r.wait(); code != 0 {
		t.Errorf("shell exit code %d, want 0; terminal output:\n%s", code, r.out.String())
	}
}

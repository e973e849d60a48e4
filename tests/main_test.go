// Package tests holds black-box tests of the built static gaffer binary: run as a real PID 1 in a
// fresh PID namespace, in a pty, and in Docker.
package tests

import (
	"bufio"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gaffer/reaper"
)

// Paths of the binaries built once for the whole package.
var (
	gafferBin string // the static gaffer binary, built like a release
	probeBin  string // tests/probe, the reporting child
	repoRoot  string
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gaffer-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Others may need to run the binaries (tests as a non-root user).
	_ = os.Chmod(dir, 0o755)
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	gafferBin = filepath.Join(dir, "gaffer")
	probeBin = filepath.Join(dir, "probe")
	for _, b := range []struct{ out, pkg string }{{gafferBin, "."}, {probeBin, "./tests/probe"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-ldflags=-s -w", "-o", b.out, b.pkg)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// inCI reports whether the tests run in CI, where nothing may be skipped for want of root or docker.
func inCI() bool { return os.Getenv("CI") == "true" }

// needRoot skips a test that needs root (PID namespaces, setuid), or fails it in CI.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if inCI() {
		t.Fatal("this test needs root, and CI runs as root")
	}
	t.Skip("needs root (PID namespaces, credentials); CI runs it")
}

// gafferRun is one gaffer process started by a test.
type gafferRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout lines
	stderr *testutil.SyncBuffer
	done   chan struct{}
	code   int
}

// startOpts say how a test starts gaffer.
type startOpts struct {
	pid1  bool     // run gaffer as PID 1 of a new PID namespace (needs root)
	env   []string // extra environment
	dir   string
	stdin bool // give gaffer a stdin pipe (else /dev/null)
}

// startGaffer runs gaffer with args; stdout is read line by line, stderr collected. The process is
// killed at the end of the test if it is still running.
func startGaffer(t *testing.T, o startOpts, args ...string) *gafferRun {
	t.Helper()
	if o.pid1 {
		needRoot(t)
	}
	cmd := exec.Command(gafferBin, args...)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Dir = o.dir
	if o.pid1 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	}
	g := &gafferRun{t: t, cmd: cmd, lines: make(chan string, 100000), stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	if o.stdin {
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		g.stdin = w
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = g.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gaffer: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			g.lines <- sc.Text()
		}
		close(g.lines)
		_ = cmd.Wait()
		g.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			g.code = 128 + int(ws.Signal())
		}
		close(g.done)
	}()
	t.Cleanup(func() {
		select {
		case <-g.done:
			return
		default:
		}
		// Outside a PID namespace gaffer's children outlive a SIGKILL of gaffer and hold its
		// stdout: kill the whole tree, or the wait for stdout to close never ends.
		tree, _ := reaper.Descendants(cmd.Process.Pid)
		_ = cmd.Process.Kill()
		for _, p := range tree {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		select {
		case <-g.done:
		case <-time.After(30 * time.Second):
			t.Errorf("gaffer's stdout still open 30s after killing its tree")
		}
	})
	return g
}

// expectLine waits for a stdout line equal to want, failing after d. Lines before it are skipped
// and returned.
func (g *gafferRun) expectLine(want string, d time.Duration) []string {
	g.t.Helper()
	var skipped []string
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-g.lines:
			if !ok {
				g.t.Fatalf("stdout closed waiting for %q; saw %q; stderr: %s", want, skipped, g.stderr.String())
			}
			if l == want {
				return skipped
			}
			skipped = append(skipped, l)
		case <-deadline:
			g.t.Fatalf("no line %q within %v; saw %q; stderr: %s", want, d, skipped, g.stderr.String())
		}
	}
}

// nextLine returns the next stdout line, failing after d.
func (g *gafferRun) nextLine(d time.Duration) string {
	g.t.Helper()
	select {
	case l, ok := <-g.lines:
		if !ok {
			g.t.Fatalf("stdout closed; stderr: %s", g.stderr.String())
		}
		return l
	case <-time.After(d):
		g.t.Fatalf("no line within %v; stderr: %s", d, g.stderr.String())
	}
	return ""
}

// nextLineOr is nextLine with what the test was waiting for in the failure message.
func (g *gafferRun) nextLineOr(d time.Duration, what string) string {
	g.t.Helper()
	select {
	case l, ok := <-g.lines:
		if !ok {
			g.t.Fatalf("stdout closed waiting for %s; stderr: %s", what, g.stderr.String())
		}
		return l
	case <-time.After(d):
		g.t.Fatalf("no line within %v waiting for %s; stderr: %s", d, what, g.stderr.String())
	}
	return ""
}

// waitAllSignals waits until gaffer (run with -v) says it handles every signal: it notifies the
// fatal ones first and the rest while the child starts.
func (g *gafferRun) waitAllSignals() {
	g.t.Helper()
	testutil.WaitFor(g.t, 10*time.Second, "gaffer: forwarding all signals", func() bool {
		return strings.Contains(g.stderr.String(), "gaffer: forwarding all signals")
	})
}

// wait waits for gaffer to exit and returns its exit code (128+n when killed by signal n).
func (g *gafferRun) wait(d time.Duration) int {
	g.t.Helper()
	select {
	case <-g.done:
		return g.code
	case <-time.After(d):
		g.t.Fatalf("gaffer still running after %v; stderr: %s", d, g.stderr.String())
	}
	return -1
}

// signal sends sig to the gaffer process.
func (g *gafferRun) signal(sig syscall.Signal) {
	g.t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatalf("signal gaffer: %v", err)
	}
}

// runGaffer runs gaffer to completion and returns its exit code, stdout and stderr.
func runGaffer(t *testing.T, o startOpts, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	g := startGaffer(t, o, args...)
	var out []string
	for l := range g.lines {
		out = append(out, l)
	}
	code = g.wait(30 * time.Second)
	return code, strings.Join(out, "\n"), g.stderr.String()
}

// startGafferVia starts argv (a wrapper that runs gaffer) with the same stdout/stderr handling as
// startGaffer.
func startGafferVia(t *testing.T, argv []string) *gafferRun {
	t.Helper()
	saved := gafferBin
	defer func() { gafferBin = saved }()
	gafferBin = argv[0]
	return startGaffer(t, startOpts{}, argv[1:]...)
}

// runCmd runs argv to completion and returns its exit code, stdout (trailing newline trimmed) and
// stderr.
func runCmd(t *testing.T, argv ...string) (int, string, string) {
	t.Helper()
	return runGafferVia(t, argv)
}

func runGafferVia(t *testing.T, argv []string) (int, string, string) {
	t.Helper()
	g := startGafferVia(t, argv)
	var out []string
	for l := range g.lines {
		out = append(out, l)
	}
	return g.wait(30 * time.Second), strings.Join(out, "\n"), g.stderr.String()
}

package tests

// Issue 7, item 1: a blocked stdout or stderr never stops the init. gaffer's stdout (or stderr) is
// a pipe that nobody reads; gaffer must go on reaping, answering the API, forwarding signals and
// stopping within its bounds, and count what it could not write.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// useTestBin runs the test against $GAFFER_TEST_BIN instead of the binary TestMain built (to
// check that a regression test fails on an older gaffer).
func useTestBin(t *testing.T) {
	t.Helper()
	bin := os.Getenv("GAFFER_TEST_BIN")
	if bin == "" {
		return
	}
	saved := gafferBin
	gafferBin = bin
	t.Cleanup(func() { gafferBin = saved })
}

// startStdio starts gaffer as PID 1 of a new PID namespace, in dir, with the given stdout and
// stderr: an *os.File is handed over as it is (a pipe nobody reads), nil for stderr means that
// the test reads it into g.stderr. g.lines is closed: gaffer's stdout is not the test's to read.
// At the end of the test, gaffer and its namespace are killed if still running, and the files
// are closed so that nothing stays blocked.
func startStdio(t *testing.T, dir string, stdout, stderr *os.File, args ...string) *gafferRun {
	t.Helper()
	needRoot(t)
	cmd := exec.Command(gafferBin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	g := &gafferRun{t: t, cmd: cmd, lines: make(chan string), stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	close(g.lines)
	cmd.Stdout = stdout
	if stderr != nil {
		cmd.Stderr = stderr
	} else {
		cmd.Stderr = g.stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gaffer: %v", err)
	}
	go func() {
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
		// PID 1 of its namespace: its SIGKILL ends every process in it.
		_ = cmd.Process.Kill()
		select {
		case <-g.done:
		case <-time.After(30 * time.Second):
			t.Errorf("gaffer not gone 30s after SIGKILL")
		}
	})
	return g
}

// unreadPipe makes a pipe whose read end the test never reads until the end of the test; it
// returns both ends. The read end is closed at the end of the test (then writers get EPIPE).
func unreadPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// Registered before startStdio's cleanup, so it runs after it: gaffer is gone by then.
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// waitPipeFull waits until the pipe of r is full: more than half its capacity is taken and the
// amount stays the same between two looks, while its writer writes without end. Small writes each
// take a page of the pipe's ring, so full is not always the capacity.
func waitPipeFull(t *testing.T, r *os.File) {
	t.Helper()
	fd := int(r.Fd())
	size, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	testutil.WaitFor(t, 20*time.Second, "the unread pipe to fill up", func() bool {
		time.Sleep(20 * time.Millisecond)
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
		full := err == nil && n > size/2 && n == last
		last = n
		return full
	})
}

// getWithin does GET path on sock and fails the test (Errorf: the caller decides whether to go
// on) unless a 200 answer arrives within d. It returns the body, nil on failure.
func getWithin(t *testing.T, sock, path string, d time.Duration) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://gaffer"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := httpClient(sock).Do(req)
	if err != nil {
		t.Errorf("GET %s: no answer within %v: %v", path, d, err)
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("GET %s: %d %s %v (after %v)", path, resp.StatusCode, b, err, time.Since(start))
		return nil
	}
	return b
}

// metricSum adds up the samples of metric (any labels) in Prometheus text; -1 when there is none.
func metricSum(text, metric string) float64 {
	sum, seen := 0.0, false
	for _, l := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(l, metric)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum, seen = sum+v, true
		}
	}
	if !seen {
		return -1
	}
	return sum
}

// procEnv is the environment of pid (empty for a zombie or a process that is gone).
func procEnv(pid int) map[string]string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// procPPid is the parent of pid as this (the host's) namespace sees it, or 0.
func procPPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// nsPid is pid as the innermost PID namespace it is in sees it (the pid gaffer's API reports),
// or 0.
func nsPid(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "NSpid:"); ok {
			fs := strings.Fields(rest)
			if len(fs) == 0 {
				return 0
			}
			p, _ := strconv.Atoi(fs[len(fs)-1])
			return p
		}
	}
	return 0
}

// makeOrphan starts, inside the PID namespace of gaffer (PID 1 there), a process whose parent
// exits at once, so that it is reparented to gaffer; the orphan sleeps for d and then exits. It
// returns the orphan's host pid once it is seen.
func makeOrphan(t *testing.T, gpid int, d time.Duration) int {
	t.Helper()
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	script := fmt.Sprintf("GAFFER_TEST_ORPHAN=%s sleep %.1f & exit 0", token, d.Seconds())
	// No output pipe: the orphan would hold it, and Run would wait for the orphan's end.
	if err := exec.Command("nsenter", "-t", strconv.Itoa(gpid), "-p", "--", "sh", "-c", script).Run(); err != nil {
		t.Fatalf("nsenter: %v", err)
	}
	var pid int
	testutil.WaitFor(t, 10*time.Second, "the orphan in gaffer's namespace", func() bool {
		for p := range nsProcesses(gpid) {
			if procEnv(p)["GAFFER_TEST_ORPHAN"] == token {
				pid = p
				return true
			}
		}
		return false
	})
	return pid
}

// waitReaped waits until pid (an orphan of gaffer's) has exited and been reaped: gone from /proc,
// not even a zombie.
func waitReaped(t *testing.T, gpid, pid int, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if procState(pid) == 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("orphan %d not reaped within %v: state %c, parent %d (gaffer %d)", pid, d, procState(pid), procPPid(pid), gpid)
	return false
}

// Contract (gaffer up, stdout a pipe that nobody reads while a process writes without end):
// gaffer still reaps orphans, answers GET /v1/info within 5 s with an integer
// output_dropped_bytes, serves gaffer_output_dropped_bytes_total in /metrics, forwards signals, and
// on SIGTERM exits 0 within stop_timeout + grace + 1 s (checked with 3 s of slack); its stderr then
// holds one line saying how many bytes of output were dropped.
func TestBlockedStdoutUp(t *testing.T) {
	needRoot(t)
	useTestBin(t)
	dir := t.TempDir()
	toml := fmt.Sprintf(`[settings]
socket = "%[1]s/g.sock"
grace = "1s"

[process.yes]
cmd = ["sh", "-c", "trap '' USR1; exec yes hello"]
stop_timeout = "2s"

[process.sig]
cmd = ["sh", "-c", "trap 'echo got >> %[1]s/usr1' USR1; while :; do sleep 0.1; done"]
stop_timeout = "2s"
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "gaffer.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w := unreadPipe(t)
	g := startStdio(t, dir, w, nil, "up")
	a := &apiGaffer{gafferRun: g, dir: dir, sock: filepath.Join(dir, "g.sock")}
	a.waitAPI()
	waitPipeFull(t, r)
	gpid := g.cmd.Process.Pid

	// Reaping: an orphan that ends while stdout is blocked is reaped.
	orphan := makeOrphan(t, gpid, time.Second)
	waitReaped(t, gpid, orphan, 15*time.Second)

	// The API answers, and counts dropped output (0 until something is dropped: the processes'
	// output meets back-pressure while gaffer runs).
	if b := getWithin(t, a.sock, "/v1/info", 5*time.Second); b != nil {
		var info struct {
			Dropped *int64 `json:"output_dropped_bytes"`
		}
		if err := json.Unmarshal(b, &info); err != nil || info.Dropped == nil || *info.Dropped < 0 {
			t.Errorf("GET /v1/info: no integer output_dropped_bytes >= 0 in %s (%v)", b, err)
		}
	}
	if m := getWithin(t, a.sock, "/metrics", 5*time.Second); m != nil && metricSum(string(m), "gaffer_output_dropped_bytes_total") < 0 {
		t.Errorf("/metrics has no gaffer_output_dropped_bytes_total:\n%s", m)
	}

	// Signals are forwarded (the late ones are notified once the processes started: repeat).
	usr1 := filepath.Join(dir, "usr1")
	forwarded := false
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && !forwarded; {
		g.signal(unix.SIGUSR1)
		for next := time.Now().Add(500 * time.Millisecond); time.Now().Before(next) && !forwarded; time.Sleep(10 * time.Millisecond) {
			_, err := os.Stat(usr1)
			forwarded = err == nil
		}
	}
	if !forwarded {
		t.Errorf("SIGUSR1 to gaffer never reached sig within 10s")
	}

	// SIGTERM: stop_timeout 2s + grace 1s + 1s, and 3s of slack.
	g.signal(unix.SIGTERM)
	sent := time.Now()
	code := g.wait(7 * time.Second)
	t.Logf("exited %d after %v", code, time.Since(sent).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit %d, want 0 (every process stopped on its stop signal); stderr %s", code, g.stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(g.stderr.String(), "\n") {
		low := strings.ToLower(l)
		if strings.Contains(low, "dropped") && strings.Contains(low, "bytes") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Errorf("want one line on stderr about dropped output bytes, got %q; stderr:\n%s", lines, g.stderr.String())
	}
}

// Contract (gaffer -v --stop-timeout 2s --grace 1s -- sh -c '...yes >&2', gaffer's stderr, which
// the child shares, a pipe that nobody reads, stdout /dev/null): on SIGTERM gaffer exits within
// stop_timeout + grace + 1 s (checked with 3 s of slack) with the child's code: 143 when the
// child dies of SIGTERM, 137 when it ignores it and the stop timeout's SIGKILL ends it.
func TestBlockedStderrRun(t *testing.T) {
	needRoot(t)
	useTestBin(t)
	for _, c := range []struct {
		name, script string
		code         int
	}{
		{"term", "yes >&2", 143},
		{"stop-timeout", "trap '' TERM; yes >&2", 137},
	} {
		t.Run(c.name, func(t *testing.T) {
			devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer devnull.Close()
			r, w := unreadPipe(t)
			g := startStdio(t, t.TempDir(), devnull, w, "-v", "--stop-timeout", "2s", "--grace", "1s", "--", "sh", "-c", c.script)
			waitPipeFull(t, r)
			g.signal(unix.SIGTERM)
			sent := time.Now()
			select {
			case <-g.done:
			case <-time.After(7 * time.Second):
				t.Fatalf("gaffer still running 7s after SIGTERM with its stderr blocked")
			}
			t.Logf("exited %d after %v", g.code, time.Since(sent).Round(time.Millisecond))
			if g.code != c.code {
				t.Errorf("exit %d, want %d", g.code, c.code)
			}
		})
	}
}

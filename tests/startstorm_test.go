package tests

// Issue 7, item 6: limits on how much gaffer will start. A scale request beyond the instance
// ceiling is refused; starting many processes never starves the loop.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Contract: POST /v1/processes/{name}/scale beyond 1024 instances of one process
// (config.MaxInstances) answers 400, at once, and changes nothing: the instance that ran still
// runs, with the same pid, and gaffer goes on answering.
func TestScaleBeyondCeilingRefused(t *testing.T) {
	useTestBin(t)
	a := apiUpPID1(t, `grace = "1s"`, `
[process.w]
cmd = "sleep 1000"
`)
	// A gaffer that tried to make 2^31 instances would eat the machine's memory: cap what it can
	// take, so that such a gaffer dies instead.
	gpid := a.cmd.Process.Pid
	lim := unix.Rlimit{Cur: 4 << 30, Max: 4 << 30}
	if err := unix.Prlimit(gpid, unix.RLIMIT_AS, &lim, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	var pid int
	testutil.WaitFor(t, 10*time.Second, "w running", func() bool {
		p := a.process("w")
		pid = p.Pid
		return p.State == "running" && pid != 0
	})
	for _, n := range []int{2147483647, 1025} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, err := http.NewRequestWithContext(ctx, "POST", "http://gaffer/v1/processes/w/scale", strings.NewReader(fmt.Sprintf(`{"numprocesses":%d}`, n)))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := httpClient(a.sock).Do(req)
		if err != nil {
			cancel()
			// Stop it before it takes more of the machine (PID 1: its namespace goes with it).
			_ = a.cmd.Process.Kill()
			t.Fatalf("scale w %d: no answer within 10s: %v", n, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != 400 {
			t.Errorf("scale w %d: %d %s, want 400", n, resp.StatusCode, body)
		}
	}
	select {
	case <-a.done:
		t.Fatalf("gaffer exited (%d); stderr %s", a.code, a.stderr.String())
	default:
	}
	ps := a.processes()
	if len(ps) != 1 || ps[0].Group != "w" || ps[0].Pid != pid || ps[0].State != "running" {
		t.Errorf("after refused scales: %+v, want w alone, running with pid %d", ps, pid)
	}
	if got := a.process("w").Config["numprocesses"]; got != 1.0 {
		t.Errorf("config numprocesses %v after refused scales, want 1", got)
	}
}

// stormInfo is what the storm test reads of GET /v1/info.
type stormInfo struct {
	Processes map[string]int `json:"processes"`
}

func (i stormInfo) started() int {
	return i.Processes["starting"] + i.Processes["running"] + i.Processes["ready"]
}

// infoOnce does one GET /v1/info that must answer within d once connected. connected is false
// when the socket does not accept yet (not there, refused).
func infoOnce(sock string, d time.Duration) (info stormInfo, connected bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://gaffer/v1/info", nil)
	if err != nil {
		return info, false, err
	}
	resp, err := httpClient(sock).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return info, false, nil
		}
		return info, true, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return info, true, err
	}
	if resp.StatusCode != 200 {
		return info, true, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return info, true, json.Unmarshal(b, &info)
}

// Contract: with numprocesses = 1000, the loop starts them a few at a time between its other work:
// the API answers while they start (its first answer comes before all 1000 are started, and each
// answer within 5 s), and a SIGTERM during the start stops everything: gaffer exits within 15 s
// and leaves no process behind (gaffer runs here as a subreaper, not PID 1, so that a process left
// behind would outlive it).
func TestStartStormKeepsLoopAnswering(t *testing.T) {
	useTestBin(t)
	const n = 1000
	dir := t.TempDir()
	sock := filepath.Join(dir, "g.sock")
	toml := fmt.Sprintf("[settings]\nsocket = %q\ngrace = \"2s\"\n\n[process.w]\ncmd = \"sleep 1000\"\nnumprocesses = %d\nstop_timeout = \"2s\"\n", sock, n)
	if err := os.WriteFile(filepath.Join(dir, "gaffer.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	token := "storm-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	leftovers := func() []int {
		var out []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err == nil && procEnv(p)["GAFFER_TEST_STORM"] == token {
				out = append(out, p)
			}
		}
		return out
	}
	t.Cleanup(func() {
		for _, p := range leftovers() {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
	begin := time.Now()
	g := startGaffer(t, startOpts{dir: dir, env: []string{"GAFFER_TEST_STORM=" + token}}, "up")
	a := &apiGaffer{gafferRun: g, dir: dir, sock: sock}
	stopAtEnd(t, g)
	go func() {
		for range g.lines { // keep its stdout moving
		}
	}()

	// Answers while the processes start.
	var answers []int // started count of each answer
	var worst time.Duration
	for len(answers) < 4 {
		if time.Since(begin) > 60*time.Second {
			t.Fatalf("no answer from the API within 60s; stderr %s", g.stderr.String())
		}
		select {
		case <-g.done:
			t.Fatalf("gaffer exited (%d); stderr %s", g.code, g.stderr.String())
		default:
		}
		sent := time.Now()
		info, connected, err := infoOnce(sock, 5*time.Second)
		if !connected {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		took := time.Since(sent)
		worst = max(worst, took)
		if err != nil {
			t.Fatalf("GET /v1/info while %d processes start: no answer within 5s (%v, after %v)", n, err, took)
		}
		answers = append(answers, info.started())
	}
	t.Logf("first answer %v after start; started per answer %v; slowest answer %v", time.Since(begin).Round(time.Millisecond), answers, worst.Round(time.Millisecond))
	if answers[0] >= n {
		t.Errorf("the API first answered once all %d processes had started: the start pass held the loop", n)
	}
	a.waitAPI()

	// SIGTERM during the start.
	g.signal(unix.SIGTERM)
	sent := time.Now()
	select {
	case <-g.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("gaffer still running 15s after SIGTERM (last answer: %d of %d started); stderr %s", answers[len(answers)-1], n, g.stderr.String())
	}
	t.Logf("exited %d %v after SIGTERM", g.code, time.Since(sent).Round(time.Millisecond))
	var left []int
	deadline := time.Now().Add(2 * time.Second)
	for left = leftovers(); len(left) > 0 && time.Now().Before(deadline); left = leftovers() {
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		var cmds []string
		for _, p := range left[:min(5, len(left))] {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
			cmds = append(cmds, fmt.Sprintf("%d %q", p, strings.ReplaceAll(string(b), "\x00", " ")))
		}
		t.Errorf("%d processes left behind after gaffer exited: %s", len(left), strings.Join(cmds, "; "))
	}
}

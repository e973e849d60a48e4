package tests

// Black-box tests of the drain (issue 9): settings.drain in gaffer up and --drain in gaffer --.
// On a stop request gaffer first answers not ready (GET /v1/health?level=ready: 503, draining)
// while everything keeps running, and stops only once the drain is over; a second request skips
// the rest of it.

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// iss9Trapper is a process that notes the time of its SIGTERM in {dir}/NAME.stopped and exits 0;
// it prints "up" once its trap is in place.
func iss9Trapper(name string) string {
	return `
[process.` + name + `]
cmd = ["sh", "-c", "trap 'date +%s%N > {dir}/` + name + `.stopped; exit 0' TERM; echo up; while :; do sleep 0.05; done"]
`
}

// iss9Pids is the pid of every process by name, from the API.
func iss9Pids(a *apiGaffer) map[string]int {
	a.t.Helper()
	out := map[string]int{}
	for _, p := range a.processes() {
		out[p.Name] = p.Pid
	}
	return out
}

// iss9Up2 starts a gaffer up of two trappers, web and worker, with settings, and waits until both
// are up (their traps in place).
func iss9Up2(t *testing.T, settings string) (*apiGaffer, *iss9Log) {
	t.Helper()
	a := iss9Up(t, true, settings, iss9Trapper("web")+iss9Trapper("worker"), nil)
	out := newIss9Log(a.gafferRun)
	out.await(-1, "web", "up")
	out.await(-1, "worker", "up")
	return a, out
}

// Contract: with drain = "3s", a SIGTERM makes level ready fail at once (503, draining) while
// every process keeps running with its pid; the processes get their SIGTERM only once the drain
// is over, after the events "received SIGTERM" and "draining for 3s"; gaffer then exits 0.
func TestDrainUpHoldsTheStop(t *testing.T) {
	const drain = 3 * time.Second
	a, out := iss9Up2(t, `drain = "3s"`)
	before := iss9Pids(a)
	if r := a.iss9Health("ready"); r.status != 200 || r.Draining {
		t.Fatalf("level ready before the SIGTERM: %d %s", r.status, r.raw)
	}
	sent := time.Now()
	a.signal(unix.SIGTERM)
	var r iss9Report
	a.iss9WaitUntil("level ready failing", func() bool { r = a.iss9Health("ready"); return r.status == 503 })
	if !r.Draining || r.OK || len(r.Failing) == 0 || r.Failing[0].Reason != "draining" {
		t.Fatalf("level ready during the drain: %s; want draining with the reason \"draining\"", r.raw)
	}
	if r := a.iss9Health("alive"); r.status != 200 || !r.Draining {
		t.Fatalf("level alive during the drain: %d %s; want 200, draining", r.status, r.raw)
	}
	for _, p := range a.processes() {
		if p.Pid != before[p.Name] || p.State != "running" {
			t.Fatalf("%s is %s with pid %d during the drain, want running with pid %d", p.Name, p.State, p.Pid, before[p.Name])
		}
	}
	i := out.event(-1, "received SIGTERM")
	i = out.event(i, "draining for 3s")
	out.event(i, "web exited with code 0")
	out.event(i, "worker exited with code 0")
	if code := out.rest(); code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	if j := out.find(-1, "gaffer", "skipping"); j >= 0 {
		t.Fatalf("the drain was skipped:\n%s", out)
	}
	for _, name := range []string{"web", "worker"} {
		stopped := iss9Times(t, filepath.Join(a.dir, name+".stopped"))
		if len(stopped) != 1 || stopped[0].Sub(sent) < drain {
			t.Fatalf("%s got its SIGTERM at %v, %v after gaffer's: before the drain of %v was over", name, stopped, stopped[0].Sub(sent), drain)
		}
	}
}

// Contract: a second SIGTERM during the drain skips the rest of it ("skipping the rest of the
// drain"): gaffer stops everything and exits long before the drain (60 s) would have ended.
func TestDrainUpSecondSignalSkips(t *testing.T) {
	a, out := iss9Up2(t, `drain = "60s"`)
	a.signal(unix.SIGTERM)
	i := out.event(-1, "draining for 1m0s")
	a.iss9WaitUntil("level ready failing", func() bool { return a.iss9Health("ready").status == 503 })
	if p := a.iss9Proc("web"); p.State != "running" {
		t.Fatalf("web is %s during the drain, want running", p.State)
	}
	a.signal(unix.SIGTERM)
	j := out.event(i, "skipping the rest of the drain")
	out.event(j, "web exited with code 0")
	if code := out.rest(); code != 0 { // within iss9Wait (30 s), half the drain
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
}

// Contract: SIGQUIT stops at once, without the drain.
func TestDrainUpQuitDoesNotDrain(t *testing.T) {
	a, out := iss9Up2(t, `drain = "60s"`)
	a.signal(unix.SIGQUIT)
	i := out.event(-1, "received SIGQUIT")
	out.event(i, "web exited with code 0")
	if code := out.rest(); code != 0 { // within iss9Wait (30 s), half the drain
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	if j := out.find(-1, "gaffer", "drain"); j >= 0 {
		t.Fatalf("SIGQUIT drained:\n%s", out)
	}
}

// Contract: `gaffer shutdown` (POST /v1/shutdown) drains like SIGTERM, and a shutdown request
// during the drain skips the rest of it; POST /v1/shutdown?drain=0 stops at once, without a drain.
func TestDrainUpShutdownRequest(t *testing.T) {
	t.Run("drains", func(t *testing.T) {
		a, out := iss9Up2(t, `drain = "60s"`)
		before := iss9Pids(a)
		mustCtl(t, a.sock, "shutdown")
		i := out.event(-1, "draining for 1m0s")
		a.iss9WaitUntil("level ready failing", func() bool { return a.iss9Health("ready").status == 503 })
		if r := a.iss9Health("ready"); !r.Draining {
			t.Fatalf("level ready after gaffer shutdown: %s, want draining", r.raw)
		}
		for _, p := range a.processes() {
			if p.Pid != before[p.Name] || p.State != "running" {
				t.Fatalf("%s is %s with pid %d during the drain, want running with pid %d", p.Name, p.State, p.Pid, before[p.Name])
			}
		}
		if code, body := a.post("/v1/shutdown?drain=0", nil); code/100 != 2 {
			t.Fatalf("POST /v1/shutdown?drain=0 during the drain: %d %s", code, body)
		}
		out.event(i, "skipping the rest of the drain")
		if code := out.rest(); code != 0 {
			t.Fatalf("exit %d, want 0:\n%s", code, out)
		}
	})
	t.Run("drain=0", func(t *testing.T) {
		a, out := iss9Up2(t, `drain = "60s"`)
		if code, body := a.post("/v1/shutdown?drain=0", nil); code/100 != 2 {
			t.Fatalf("POST /v1/shutdown?drain=0: %d %s", code, body)
		}
		out.event(-1, "web exited with code 0")
		if code := out.rest(); code != 0 {
			t.Fatalf("exit %d, want 0:\n%s", code, out)
		}
		if i := out.find(-1, "gaffer", "drain"); i >= 0 {
			t.Fatalf("drained although drain=0:\n%s", out)
		}
	})
}

// iss9RunPID1 starts `gaffer --socket {dir}/g.sock FLAGS -- ARGV` as PID 1 of a new PID namespace
// and waits until its API answers.
func iss9RunPID1(t *testing.T, flags []string, argv ...string) *apiGaffer {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "g.sock")
	for i, arg := range argv {
		argv[i] = strings.ReplaceAll(arg, "{dir}", dir)
	}
	args := append(append([]string{"--socket", sock}, flags...), "--")
	g := startGaffer(t, startOpts{pid1: true, dir: dir}, append(args, argv...)...)
	a := &apiGaffer{gafferRun: g, dir: dir, sock: sock}
	stopAtEnd(t, g)
	a.waitAPI()
	return a
}

// Contract: gaffer --drain 2s -- CMD, as PID 1: a SIGTERM is held back for the drain (level ready
// answers 503, draining, meanwhile) and forwarded to the child only once the drain is over.
func TestDrainRunHoldsTheSignal(t *testing.T) {
	const drain = 2 * time.Second
	a := iss9RunPID1(t, []string{"--drain", "2s"}, "sh", "-c", "trap 'date +%s%N > {dir}/got; exit 0' TERM; echo up; while :; do sleep 0.05; done")
	a.expectLine("up", iss9Wait)
	sent := time.Now()
	a.signal(unix.SIGTERM)
	var r iss9Report
	a.iss9WaitUntil("level ready failing", func() bool { r = a.iss9Health("ready"); return r.status == 503 })
	if !r.Draining || r.OK {
		t.Fatalf("level ready during the drain: %s, want draining", r.raw)
	}
	if code := a.wait(iss9Wait); code != 0 {
		t.Fatalf("exit %d, want 0 (the child's trap exits 0); stderr %s", code, a.stderr.String())
	}
	if !strings.Contains(a.stderr.String(), "gaffer: received SIGTERM: draining for 2s before forwarding it") {
		t.Fatalf("no word of the drain on stderr: %q", a.stderr.String())
	}
	got := iss9Times(t, filepath.Join(a.dir, "got"))
	if len(got) != 1 || got[0].Sub(sent) < drain {
		t.Fatalf("the child got SIGTERM at %v, %v after gaffer: before the drain of %v was over", got, got[0].Sub(sent), drain)
	}
}

// Contract: gaffer --drain 60s -- CMD, as PID 1: a second SIGTERM during the drain is forwarded
// at once (long before the drain would end), and the one held back is not forwarded as well.
func TestDrainRunSecondSignalForwarded(t *testing.T) {
	a := iss9RunPID1(t, []string{"--drain", "60s", "--stop-timeout", "1s"}, probeBin, "signals", "keep")
	a.expectLine("ready", iss9Wait)
	a.signal(unix.SIGTERM)
	a.iss9WaitUntil("the drain", func() bool {
		return strings.Contains(a.stderr.String(), "gaffer: received SIGTERM: draining for 1m0s before forwarding it")
	})
	if r := a.iss9Health("ready"); r.status != 503 || !r.Draining {
		t.Fatalf("level ready during the drain: %d %s", r.status, r.raw)
	}
	a.signal(unix.SIGTERM)
	a.expectLine("got TERM", iss9Wait) // iss9Wait is half the drain
	// gaffer's stderr comes through a copying goroutine of os/exec: it may lag behind stdout.
	a.iss9WaitUntil("the drain skipped", func() bool {
		return strings.Contains(a.stderr.String(), "gaffer: received SIGTERM again: skipping the rest of the drain")
	})
	// The probe ignores its SIGTERM; --stop-timeout kills it a second later.
	lines, code := collect(t, a.gafferRun, iss9Wait)
	if code != 137 {
		t.Fatalf("exit %d, want 137 (killed after --stop-timeout); stdout %q; stderr %s", code, lines, a.stderr.String())
	}
	if n := strings.Count(strings.Join(lines, "\n"), "got TERM"); n != 0 {
		t.Fatalf("%d more SIGTERMs forwarded after the second: the held one must not be; stdout %q", n, lines)
	}
}

var iss9DrainingMetric = regexp.MustCompile(`(?m)^gaffer_draining 1$`)

// Contract (core.Info.Draining): GET /v1/info says draining from a stop request until the drain is
// over, and /metrics has gaffer_draining 1 meanwhile, in both modes, as level ready does.
func TestDrainReportedByInfoAndMetrics(t *testing.T) {
	check := func(t *testing.T, a *apiGaffer) {
		t.Helper()
		a.signal(unix.SIGTERM)
		a.iss9WaitUntil("level ready draining", func() bool { return a.iss9Health("ready").Draining })
		var info struct {
			Draining bool `json:"draining"`
		}
		a.get("/v1/info", &info)
		code, metrics, err := httpDo(a.sock, "GET", "/metrics", nil)
		if err != nil || code != 200 {
			t.Fatalf("GET /metrics: %d %v", code, err)
		}
		if r := a.iss9Health("ready"); !r.Draining {
			t.Fatalf("the drain ended while the test looked (60 s)")
		}
		if !info.Draining {
			t.Errorf("GET /v1/info: draining false during the drain (level ready says draining)")
		}
		if !iss9DrainingMetric.Match(metrics) {
			t.Errorf("/metrics during the drain has no gaffer_draining 1:\n%s", iss9Grep(string(metrics), "gaffer_draining"))
		}
	}
	t.Run("up", func(t *testing.T) {
		a, _ := iss9Up2(t, `drain = "60s"`)
		check(t, a)
	})
	t.Run("run", func(t *testing.T) {
		a := iss9RunPID1(t, []string{"--drain", "60s"}, "sleep", "1000")
		check(t, a)
	})
}

// iss9Grep is the lines of text that contain s.
func iss9Grep(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

package pid1

import (
	"strings"
	"testing"
	"time"

	"gaffer/core"
)

// healthProbe is the exec check of name under way, which the test ends.
func (h *harness) healthProbe(name string) *fakeChild {
	h.t.Helper()
	in := h.inst(name)
	if in.health.probe == nil {
		h.t.Fatalf("%s has no health check running (state %v)\nevents:\n%s", name, in.state, h.events())
	}
	return in.health.probe.(*fakeChild)
}

// check runs name's next health check (due after interval) and ends it with code.
func (h *harness) check(name string, interval time.Duration, code int) {
	h.t.Helper()
	h.advance(interval)
	h.healthProbe(name).die(code)
	h.settle()
}

const healthToml = `
[process.web]
cmd = "x"
health = "exec:check"
health_interval = "1s"
health_timeout = "500ms"
health_retries = 3
`

func TestHealthRetriesAreConsecutiveThenRestart(t *testing.T) {
	h := newHarness(t, healthToml+"backoff = \"2s\"\n", nil).run()
	in := h.inst("web")
	if in.health.status != core.HealthUnknown || in.health.probe != nil {
		t.Fatalf("at start: %q, probe %v", in.health.status, in.health.probe)
	}
	h.advance(999 * time.Millisecond)
	if in.health.probe != nil {
		t.Fatal("a check began before health_interval")
	}
	h.advance(time.Millisecond)
	h.healthProbe("web").die(0)
	h.settle()
	if in.health.status != core.HealthHealthy {
		t.Fatalf("after a good check: %q", in.health.status)
	}
	// Two failures, a success, two failures: never three in a row.
	for _, code := range []int{1, 1, 0, 1, 1} {
		h.check("web", time.Second, code)
	}
	if in.health.status != core.HealthHealthy || in.health.failures != 2 || h.starts("web") != 1 {
		t.Fatalf("status %q failures %d starts %d", in.health.status, in.health.failures, h.starts("web"))
	}
	h.check("web", time.Second, 1)
	h.wantEvent("web unhealthy: 3 checks failed (last: exit 1)")
	h.wantState("web", stateBackoff) // the fake dies of its stop signal at once
	if in.health.failed != 5 {
		t.Fatalf("checks failed %d, want 5", in.health.failed)
	}
	// No checks while it is down; the restart follows the backoff, and checks begin again.
	h.advance(1999 * time.Millisecond)
	if in.health.probe != nil || h.starts("web") != 1 {
		t.Fatalf("during backoff: probe %v, starts %d", in.health.probe, h.starts("web"))
	}
	h.advance(time.Millisecond)
	h.wantState("web", stateRunning)
	if in.health.status != core.HealthUnknown || in.restarts != 1 {
		t.Fatalf("new run: %q, restarts %d", in.health.status, in.restarts)
	}
	h.check("web", time.Second, 0)
	if in.health.status != core.HealthHealthy {
		t.Fatalf("after restart: %q", in.health.status)
	}
}

func TestHealthTimeoutIsAFailureAndChecksNeverOverlap(t *testing.T) {
	h := newHarness(t, healthToml+"on_unhealthy = \"ignore\"\n", nil).run()
	in := h.inst("web")
	h.advance(time.Second)
	first := h.healthProbe("web")
	h.advance(499 * time.Millisecond)
	if h.healthProbe("web") != first || len(h.l.probes["web"]) != 1 {
		t.Fatal("a second check began while the first ran")
	}
	h.advance(time.Millisecond)
	if in.health.probe != nil || in.health.failures != 1 || !strings.Contains(in.health.lastErr, "no answer within 500ms") {
		t.Fatalf("after the timeout: probe %v failures %d err %q", in.health.probe, in.health.failures, in.health.lastErr)
	}
	if !first.dead {
		t.Fatal("the timed-out check was not killed")
	}
	// The next one comes an interval after the end of this one.
	h.advance(999 * time.Millisecond)
	if in.health.probe != nil {
		t.Fatal("next check before the interval")
	}
	h.advance(time.Millisecond)
	h.healthProbe("web").die(1)
	h.settle()
	h.check("web", time.Second, 1)
	h.wantEvent("web unhealthy: 3 checks failed")
	h.wantState("web", stateRunning) // ignore: only reported
	h.check("web", time.Second, 0)
	h.wantEvent("web healthy again")
}

func TestHealthShutdownAction(t *testing.T) {
	h := newHarness(t, strings.Replace(healthToml, "health_retries = 3", "health_retries = 1", 1)+"on_unhealthy = \"shutdown\"\n", nil).run()
	h.check("web", time.Second, 7)
	h.wantEvent("web unhealthy: check failed: exit 7")
	done, code := h.done()
	if !done || code != 1 {
		t.Fatalf("done %v code %d, want a shutdown with 1", done, code)
	}
}

func TestHealthStartGrace(t *testing.T) {
	h := newHarness(t, strings.Replace(healthToml, "health_retries = 3", "health_retries = 1", 1)+"health_start = \"2500ms\"\n", nil).run()
	in := h.inst("web")
	h.check("web", time.Second, 1)
	h.check("web", time.Second, 1)
	if in.health.failures != 0 || in.health.status != core.HealthUnknown || h.starts("web") != 1 {
		t.Fatalf("within health_start: failures %d status %q starts %d", in.health.failures, in.health.status, h.starts("web"))
	}
	h.check("web", time.Second, 1) // at 3s: counts
	h.wantEvent("web unhealthy")
}

func TestHealthChecksBeginAtReady(t *testing.T) {
	toml := strings.Replace(healthToml, "cmd = \"x\"", "cmd = \"x\"\nready = \"exec:ready\"", 1)
	h := newHarness(t, toml, nil).run()
	h.wantState("web", stateStarting)
	h.advance(3 * time.Second)
	if h.inst("web").health.probe != nil {
		t.Fatal("a health check ran before ready")
	}
	probes := h.l.probes["web"]
	probes[len(probes)-1].die(0) // the readiness probe
	h.settle()
	h.wantState("web", stateReady)
	h.advance(time.Second)
	h.healthProbe("web")
}

func TestHealthLevels(t *testing.T) {
	h := newHarness(t, healthToml+`
[process.job]
cmd = "x"
oneshot = true
`, nil).run()
	ask := func(level string, names ...string) core.HealthReport {
		t.Helper()
		r, err := h.s.health(level, names)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := ask(core.LevelReady); !r.OK {
		t.Fatalf("ready at start: %+v", r)
	}
	if _, err := h.s.health("deep", nil); err == nil {
		t.Fatal("level deep accepted")
	}
	if _, err := h.s.health(core.LevelAlive, []string{"nope"}); err == nil {
		t.Fatal("unknown name accepted")
	}
	if r := ask(core.LevelReady, "job"); r.OK {
		t.Fatalf("a running oneshot named is ready: %+v", r)
	}
	h.exit("job", 0)
	if r := ask(core.LevelReady, "job"); !r.OK {
		t.Fatalf("a succeeded oneshot is not ready: %+v", r)
	}
	h.s.cfg.Config.Settings.Drain = 5 * time.Second
	h.s.requestStop(true)
	h.settle()
	if r := ask(core.LevelReady); r.OK || !r.Draining {
		t.Fatalf("ready while draining: %+v", r)
	}
	if r := ask(core.LevelAlive); !r.OK {
		t.Fatalf("not alive while draining: %+v", r)
	}
}

func TestDrainThenStopAndSecondRequestSkips(t *testing.T) {
	h := newHarness(t, "[settings]\ndrain = \"5s\"\n\n[process.web]\ncmd = \"x\"\n", nil).run()
	h.s.requestStop(true)
	h.settle()
	h.wantEvent("draining for 5s")
	h.advance(4999 * time.Millisecond)
	h.wantState("web", stateRunning)
	h.advance(time.Millisecond)
	if done, _ := h.done(); !done {
		t.Fatalf("not stopped after the drain: web is %v", h.state("web"))
	}

	h = newHarness(t, "[settings]\ndrain = \"5s\"\n\n[process.web]\ncmd = \"x\"\n", nil).run()
	h.s.requestStop(true)
	h.settle()
	h.advance(time.Second)
	h.s.requestStop(true)
	h.settle()
	h.wantEvent("skipping the rest of the drain")
	if done, _ := h.done(); !done {
		t.Fatal("a second request did not skip the drain")
	}
}

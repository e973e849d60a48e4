package pid1

import (
	"strings"
	"testing"
	"time"

	"gaffer/core"
)

// Defects found in review, each a story on fake time.

func TestRetiringInstanceEndsRemovedWhateverEndedIt(t *testing.T) {
	h := newHarness(t, `
[process.base]
cmd = "base"

[process.app]
cmd = "app"
after = ["base"]

[process.other]
cmd = "other"
`, nil)
	h.l.stubborn["app"] = true
	h.run()
	h.reload("[process.other]\ncmd = \"other\"\n", false)
	h.wantState("app", stateStopping)
	h.exit("base", 0) // on its own, while app is still stopping: not on_end = shutdown
	if done, _ := h.done(); done {
		t.Fatalf("a process ending during its removal stopped gaffer:\n%s", h.events())
	}
	h.exit("app", 143)
	if got := strings.Join(h.names(), " "); got != "other" {
		t.Fatalf("instances %q", got)
	}
	if err := h.s.startOne(h.inst("other")); err == nil {
		t.Fatal("started a running instance")
	}
}

func TestHealthTimersDoNotPileUp(t *testing.T) {
	h := newHarness(t, healthToml, nil).run()
	for range 200 {
		h.check("web", time.Second, 0)
	}
	if n := len(h.inst("web").timers); n > 2 {
		t.Fatalf("%d timers kept after 200 checks", n)
	}
	if n := len(h.clock.timers); n > 3 {
		t.Fatalf("%d live timers on the clock", n)
	}
}

func TestReloadOfHealthKeepsOneChainOfChecks(t *testing.T) {
	h := newHarness(t, healthToml, nil).run()
	h.reload(strings.Replace(healthToml, "exec:check", "exec:check2", 1), false)
	h.advance(time.Second)
	h.healthProbe("web").die(0)
	h.settle()
	h.advance(999 * time.Millisecond)
	if h.inst("web").health.probe != nil {
		t.Fatal("a second chain of checks runs")
	}
	if n := len(h.l.probes["web"]); n != 1 {
		t.Fatalf("%d checks in 2s at 1s intervals", n)
	}
}

func TestScaledScheduledInstanceRunsOnSchedule(t *testing.T) {
	h := newHarness(t, "[process.job]\ncmd = \"x\"\noneshot = true\nschedule = \"@every 10s\"\n", nil).run()
	if err := h.s.scale("job", 0); err != nil {
		t.Fatal(err)
	}
	if err := h.s.scale("job", 2); err == nil {
		t.Fatal("two instances of a scheduled job")
	}
	if err := h.s.scale("job", 1); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if h.inst("job").sched.next.IsZero() {
		t.Fatal("no next run after scale 1")
	}
	h.advance(10 * time.Second)
	if h.starts("job") != 1 {
		t.Fatalf("%d runs", h.starts("job"))
	}
}

func TestScheduledRunWaitsForItsDependencies(t *testing.T) {
	h := newHarness(t, `
[process.db]
cmd = "db"
ready = "exec:probe"

[process.job]
cmd = "x"
oneshot = true
schedule = "@every 10s"
after = ["db"]
`, nil).run()
	h.advance(10 * time.Second)
	h.wantState("db", stateStarting)
	if h.starts("job") != 0 {
		t.Fatal("the scheduled run did not wait for db")
	}
	probes := h.l.probes["db"]
	probes[len(probes)-1].die(0)
	h.settle()
	h.wantState("db", stateReady)
	if h.starts("job") != 1 {
		t.Fatalf("%d runs once db is ready", h.starts("job"))
	}
	h.exit("job", 0)
	// A reload that restarts it does not run it outside its schedule.
	h.reload(`
[process.db]
cmd = "db"
ready = "exec:probe"

[process.job]
cmd = "y"
oneshot = true
schedule = "@every 10s"
after = ["db"]
`, false)
	if h.starts("job") != 1 {
		t.Fatalf("the reload ran it at once: %d runs", h.starts("job"))
	}
}

func TestHeldProcessIsNotUnhealthy(t *testing.T) {
	h := newHarness(t, healthToml+"on_unhealthy = \"ignore\"\n", nil).run()
	for range 3 {
		h.check("web", time.Second, 1)
	}
	if r, _ := h.s.health(core.LevelAlive, nil); r.OK {
		t.Fatal("alive with an unhealthy process")
	}
	h.stop("web")
	if r, _ := h.s.health(core.LevelAlive, nil); !r.OK {
		t.Fatalf("a held process fails alive: %+v", r)
	}
}

func TestReloadOfReadyWhileStartingRestarts(t *testing.T) {
	h := newHarness(t, "[process.w]\ncmd = \"x\"\nready = \"exec:probe\"\n", nil).run()
	h.wantState("w", stateStarting)
	h.reload("[process.w]\ncmd = \"x\"\nready = \"log:up\"\n", false)
	if h.starts("w") != 2 || h.inst("w").logReady == nil {
		t.Fatalf("starts %d, log watch %v", h.starts("w"), h.inst("w").logReady)
	}
}

func TestReloadRefusedWhileANameIsStillBeingRemoved(t *testing.T) {
	h := newHarness(t, "[process.w]\ncmd = \"x\"\n\n[process.o]\ncmd = \"o\"\n", nil)
	h.l.stubborn["w"] = true
	h.run()
	h.reload("[process.o]\ncmd = \"o\"\n", false)
	if _, err := h.s.reload(loadToml(t, "[process.w]\ncmd = \"x\"\n\n[process.o]\ncmd = \"o\"\n"), false); err == nil {
		t.Fatal("re-added while the old one is being removed")
	}
}

func TestScheduledRunCutByAReloadStartsAgain(t *testing.T) {
	job := "[process.job]\ncmd = \"%s\"\noneshot = true\nschedule = \"@every 60s\"\n"
	h := newHarness(t, strings.Replace(job, "%s", "v1", 1), nil).run()
	h.advance(60 * time.Second)
	if h.starts("job") != 1 {
		t.Fatalf("%d runs at the first tick", h.starts("job"))
	}
	h.reload(strings.Replace(job, "%s", "v2", 1), false)
	if h.starts("job") != 2 || h.inst("job").cfg.Cmd[0] != "v2" {
		t.Fatalf("the cut run did not start again: %d starts, state %v", h.starts("job"), h.state("job"))
	}
}

func TestDependentStartsWhenAScaledAwayInstanceIsGone(t *testing.T) {
	h := newHarness(t, `
[process.base]
cmd = "base"
numprocesses = 2
ready = "exec:probe"

[process.web]
cmd = "web"
after = ["base"]
`, nil)
	h.l.stubborn["base"] = true // base.2 takes its time to go: its exit comes after the scale
	h.run()
	probes := h.l.probes["base.1"]
	probes[len(probes)-1].die(0)
	h.settle()
	h.wantState("base.1", stateReady)
	h.wantState("web", statePending)
	if err := h.s.scale("base", 1); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.wantState("web", statePending)
	h.exit("base.2", 137)
	h.wantState("web", stateRunning)
}

package pid1

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Scenarios of `gaffer up` on fake time: each drives a supervisor through a story and checks
// every step. TestEveryLegalTransitionIsExercised runs them all and checks that together they
// make every move the state diagram allows.
var scenarios = []struct {
	name string
	run  func(t *testing.T, tr *transitions)
}{
	{"BackoffDoublesAndResets", scenarioBackoff},
	{"MaxRestartsWithinWindow", scenarioMaxRestarts},
	{"OnEndShutdownAndIgnore", scenarioOnEnd},
	{"OneshotGatesDependents", scenarioOneshot},
	{"OrderedStopByLevel", scenarioOrderedStop},
	{"StopTimeoutEscalates", scenarioStopTimeout},
	{"ScaleDuringBackoff", scenarioScaleDuringBackoff},
	{"ScaleDownAndUp", scenarioScale},
	{"StopStartMidRestart", scenarioStopStartMidRestart},
	{"ReadinessProbeAndTimeout", scenarioReadiness},
	{"StartFailures", scenarioStartFailures},
	{"StartAgainAfterTheEnd", scenarioStartAgain},
	{"ShutdownOfEveryState", scenarioShutdownStates},
	{"StartInBatches", scenarioBatches},
	{"EndStates", scenarioEndStates},
}

func TestSupervisor(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, nil) })
	}
}

func TestEveryLegalTransitionIsExercised(t *testing.T) {
	tr := &transitions{}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, tr) })
	}
	var missing []string
	for from := statePending; from <= stateRemoved; from++ {
		for to := statePending; to <= stateRemoved; to++ {
			if legal(from, to) && !tr.seen[[2]state{from, to}] {
				missing = append(missing, fmt.Sprintf("%d:%v -> %d:%v", from, from, to, to))
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("legal moves no scenario makes:\n%v\nmade: %v", missing, sortedPairs(tr.seen))
	}
}

func TestLegalTransitions(t *testing.T) {
	cases := []struct {
		from, to state
		want     bool
	}{
		{statePending, stateStarting, true},
		{statePending, stateReady, false},
		{statePending, stateStopping, false},
		{stateStarting, stateReady, true},
		{stateRunning, stateReady, false},
		{stateReady, stateStarting, false},
		{stateStopping, stateRunning, false},
		{stateStopping, stateHeld, true},
		{stateBackoff, stateHeld, true},
		{stateRunning, stateHeld, false},
		{stateRemoved, statePending, false},
		{stateRemoved, stateStarting, false},
		{stateHeld, stateStopping, false},
		{stateFatal, stateStarting, true},
	}
	for _, c := range cases {
		if got := legal(c.from, c.to); got != c.want {
			t.Errorf("legal(%v, %v) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	for s := statePending; s <= stateRemoved; s++ {
		if legal(stateRemoved, s) {
			t.Errorf("removed -> %v is legal; removed is the end", s)
		}
	}
}

func TestIllegalTransitionIsRefusedAndReported(t *testing.T) {
	h := newHarness(t, "[process.w]\ncmd = \"x\"\n", nil)
	var warned []string
	h.s.warnf = func(f string, a ...any) { warned = append(warned, fmt.Sprintf(f, a...)) }
	in := h.inst("w")
	if h.s.to(in, stateReady, "", -1, "") {
		t.Fatal("pending -> ready was made")
	}
	if in.state != statePending || len(warned) != 1 {
		t.Fatalf("state %v, warnings %q", in.state, warned)
	}
}

func scenarioBackoff(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.w]
cmd = "x"
restart = "always"
backoff = "100ms"
backoff_max = "400ms"
`, tr).run()
	h.wantState("w", stateRunning)
	for i, want := range []time.Duration{100, 200, 400, 400} {
		want *= time.Millisecond
		h.exit("w", 1)
		h.wantState("w", stateBackoff)
		h.wantEvent(fmt.Sprintf("w restarting in %v", want))
		h.advance(want - time.Millisecond)
		h.wantState("w", stateBackoff)
		h.advance(time.Millisecond)
		h.wantState("w", stateRunning)
		if got := h.starts("w"); got != i+2 {
			t.Fatalf("after restart %d: %d starts", i+1, got)
		}
	}
	// A run as long as backoff_max resets the delay.
	h.advance(400 * time.Millisecond)
	h.exit("w", 1)
	if d := h.s.insts[0].hist.delay; d != 200*time.Millisecond {
		t.Fatalf("next delay after the reset %v, want 200ms", d)
	}
	h.advance(100 * time.Millisecond)
	h.wantState("w", stateRunning)
	if h.inst("w").restarts != 5 {
		t.Fatalf("restarts %d, want 5", h.inst("w").restarts)
	}
}

func scenarioMaxRestarts(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.w]
cmd = "x"
restart = "on-failure"
backoff = "1s"
backoff_max = "1s"
max_restarts = 2
restart_window = "10s"
`, tr).run()
	// Failures far apart never add up.
	for range 3 {
		h.exit("w", 1)
		h.advance(11 * time.Second)
		h.wantState("w", stateRunning)
	}
	// Close together they do: two restarts, then it gives up.
	h.exit("w", 1)
	h.advance(time.Second)
	h.exit("w", 1)
	h.advance(2 * time.Second)
	h.exit("w", 4)
	h.wantState("w", stateFatal)
	h.wantEvent("w gave up: 2 restarts within 10s")
	if done, code := h.done(); !done || code != 4 {
		t.Fatalf("done %v code %d; want on_end to stop with the code 4", done, code)
	}
}

func scenarioOnEnd(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.a]
cmd = "x"
on_end = "ignore"
[process.b]
cmd = "x"
on_end = "ignore"
`, tr).run()
	h.exit("a", 3)
	h.wantState("a", stateFatal)
	h.wantState("b", stateRunning)
	if done, _ := h.done(); done {
		t.Fatal("on_end ignore stopped gaffer")
	}
	// b ends cleanly; with nothing left, gaffer exits with the last failure.
	h.exit("b", 0)
	if done, code := h.done(); !done || code != 3 {
		t.Fatalf("done %v code %d, want the last failure 3", done, code)
	}

	h = newHarness(t, `
[process.a]
cmd = "x"
[process.b]
cmd = "x"
`, tr).run()
	h.exit("a", 3)
	h.wantEvent("stopping: a ended")
	if sigs := h.l.children["b"][0].signals; !slices.Equal(sigs, []syscall.Signal{syscall.SIGTERM}) {
		t.Fatalf("b got %v, want its stop signal", sigs)
	}
	if done, code := h.done(); !done || code != 3 {
		t.Fatalf("done %v code %d, want 3", done, code)
	}
}

func scenarioOneshot(t *testing.T, tr *transitions) {
	conf := `
[process.migrate]
cmd = "x"
oneshot = true
on_end = "ignore"
[process.web]
cmd = "x"
after = ["migrate"]
`
	h := newHarness(t, conf, tr).run()
	h.wantState("web", statePending)
	h.exit("migrate", 0)
	h.wantState("migrate", stateExited)
	h.wantState("web", stateRunning)

	h = newHarness(t, conf, tr).run()
	h.exit("migrate", 1)
	h.wantState("migrate", stateFatal)
	h.wantState("web", stateFatal)
	h.wantEvent("web will not start: migrate ended")
	if done, code := h.done(); !done || code != 1 {
		t.Fatalf("done %v code %d, want 1", done, code)
	}
}

func scenarioOrderedStop(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.a]
cmd = "x"
[process.b]
cmd = "x"
after = ["a"]
[process.c]
cmd = "x"
after = ["b"]
[process.d]
cmd = "x"
after = ["a"]
`, tr)
	for _, n := range []string{"a", "b", "c", "d"} {
		h.l.stubborn[n] = true
	}
	h.run()
	for _, n := range []string{"a", "b", "c", "d"} {
		h.wantState(n, stateRunning)
	}
	h.s.shutdown(0, "test")
	h.settle()
	signalled := func() []string {
		var out []string
		for _, n := range []string{"a", "b", "c", "d"} {
			if len(h.l.children[n][0].signals) > 0 {
				out = append(out, n)
			}
		}
		return out
	}
	for _, step := range []struct {
		die  string
		want []string
	}{
		{"", []string{"c"}},
		{"c", []string{"b", "c", "d"}},
		{"b", []string{"b", "c", "d"}},
		{"d", []string{"a", "b", "c", "d"}},
	} {
		if step.die != "" {
			h.exit(step.die, 143)
			h.wantState(step.die, stateExited)
		}
		if got := signalled(); !slices.Equal(got, step.want) {
			t.Fatalf("after %q stopped: signalled %v, want %v", step.die, got, step.want)
		}
	}
	if done, _ := h.done(); done {
		t.Fatal("done before a stopped")
	}
	h.exit("a", 143)
	if done, code := h.done(); !done || code != 0 {
		t.Fatalf("done %v code %d, want 0", done, code)
	}
}

func scenarioStopTimeout(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.w]
cmd = "x"
stop_timeout = "5s"
`, tr)
	h.l.stubborn["w"] = true
	h.run()
	h.s.shutdown(0, "test")
	h.settle()
	h.wantState("w", stateStopping)
	h.advance(5*time.Second - time.Millisecond)
	c := h.current("w")
	if !slices.Equal(c.signals, []syscall.Signal{syscall.SIGTERM}) {
		t.Fatalf("signals %v before the stop timeout", c.signals)
	}
	h.advance(time.Millisecond)
	if !slices.Equal(c.signals, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
		t.Fatalf("signals %v after the stop timeout", c.signals)
	}
	h.wantEvent("w still running 5s after SIGTERM: sending SIGKILL")
	if done, code := h.done(); !done || code != 137 {
		t.Fatalf("done %v code %d; a process that needed SIGKILL makes the exit 137", done, code)
	}
}

// scenarioScaleDuringBackoff is the ghost of issue 7: an instance scaled away while it waited to
// restart must never start again.
func scenarioScaleDuringBackoff(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.w]
cmd = "x"
numprocesses = 2
restart = "always"
backoff = "2s"
`, tr).run()
	h.exit("w.1", 1)
	h.exit("w.2", 1)
	h.wantState("w.1", stateBackoff)
	h.wantState("w.2", stateBackoff)
	old := h.inst("w.2")
	if err := h.s.scale("w", 1); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if old.state != stateRemoved || slices.Contains(h.names(), "w.2") {
		t.Fatalf("w.2 is %v; instances %v", old.state, h.names())
	}
	h.advance(3 * time.Second)
	h.wantState("w.1", stateRunning)
	if n := h.starts("w.2"); n != 1 {
		t.Fatalf("w.2 started %d times; the removed instance started again", n)
	}
	// Back to 2: one new instance 2, started once.
	if err := h.s.scale("w", 2); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.wantState("w.2", stateRunning)
	h.advance(10 * time.Second)
	if n := h.starts("w.2"); n != 2 {
		t.Fatalf("w.2 started %d times in all, want 2 (the first run and the new instance)", n)
	}
}

func scenarioScale(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.dep]
cmd = "x"
ready = "exec:true"
[process.w]
cmd = "x"
numprocesses = 3
after = ["dep"]
[process.s]
cmd = "x"
`, tr)
	h.l.stubborn["s"] = true
	h.run()
	// Instances that wait for their dependency are removed at once.
	h.wantState("w.3", statePending)
	if err := h.s.scale("w", 2); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(h.names(), "w.3") {
		t.Fatalf("w.3 still listed: %v", h.names())
	}
	if err := h.s.scale("w", 2); err == nil {
		t.Fatal("scaling to the same count is no conflict")
	}
	// A running one is stopped first, then removed; while it stops, a new one takes another number.
	if err := h.s.scale("s", 2); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.wantState("s.2", stateRunning)
	if err := h.s.scale("s", 1); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.wantState("s.2", stateStopping)
	if err := h.s.scale("s", 2); err != nil {
		t.Fatal(err)
	}
	h.settle()
	h.wantState("s.3", stateRunning)
	h.exit("s.2", 143)
	if slices.Contains(h.names(), "s.2") {
		t.Fatalf("s.2 still listed after its exit: %v", h.names())
	}
	h.wantEvent("s.2 removed")
	// Held, exited and fatal instances are removed at once.
	h.stop("s.3")
	h.exit("s.3", 143)
	h.wantState("s.3", stateHeld)
	if err := h.s.scale("s", 1); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(h.names(), "s.3") {
		t.Fatalf("held s.3 still listed: %v", h.names())
	}
	h2 := newHarness(t, `
[process.o]
cmd = "x"
oneshot = true
numprocesses = 3
on_end = "ignore"
[process.keep]
cmd = "x"
`, tr).run()
	h2.exit("o.2", 0)
	h2.exit("o.3", 1)
	h2.wantState("o.2", stateExited)
	h2.wantState("o.3", stateFatal)
	if err := h2.s.scale("o", 1); err != nil {
		t.Fatal(err)
	}
	if got := h2.names(); !slices.Equal(got, []string{"o.1", "keep"}) {
		t.Fatalf("instances %v", got)
	}
	// The ceiling.
	if err := h2.s.Scale(t.Context(), "o", 1<<31-1); err == nil {
		t.Fatal("scale to 2^31-1 accepted")
	}
}

func scenarioStopStartMidRestart(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.w]
cmd = "x"
restart = "always"
backoff = "1s"
[process.other]
cmd = "x"
on_end = "ignore"
`, tr).run()
	h.exit("w", 1)
	h.advance(time.Second)
	h.exit("w", 1)
	h.wantEvent("w restarting in 2s")
	// Stopped over the API while it waits: held, and the pending restart never comes.
	h.stop("w")
	h.wantState("w", stateHeld)
	if got := h.inst("w").state.String(); got != "exited" {
		t.Fatalf("the API shows held as %q", got)
	}
	h.advance(time.Minute)
	h.wantState("w", stateHeld)
	if n := h.starts("w"); n != 2 {
		t.Fatalf("%d starts, want 2", n)
	}
	// Held is not done: it may be started again, with the first delay.
	h.exit("other", 0)
	if done, _ := h.done(); done {
		t.Fatal("gaffer stopped with a held process")
	}
	h.start("w")
	h.wantState("w", stateRunning)
	h.exit("w", 1)
	h.wantEvent("w restarting in 1s")
	// Started over the API during the backoff: the pending restart is forgotten.
	h.start("w")
	h.advance(time.Minute)
	if n := h.starts("w"); n != 4 {
		t.Fatalf("%d starts, want 4", n)
	}
	if err := h.s.startOne(h.inst("w")); err == nil {
		t.Fatal("starting a running process is no conflict")
	}
	// Stop a running one: held once it exited.
	h.stop("w")
	h.wantState("w", stateHeld)
	if err := h.s.stopOne(h.inst("w")); err == nil {
		t.Fatal("stopping a held process is no conflict")
	}
}

func scenarioReadiness(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.db]
cmd = "x"
ready = "exec:check"
ready_timeout = "5s"
restart = "on-failure"
backoff = "1s"
[process.web]
cmd = "x"
after = ["db"]
`, tr).run()
	h.wantState("db", stateStarting)
	h.wantState("web", statePending)
	probes := func() []*fakeChild { return h.l.probes["db"] }
	probes()[0].die(1)
	h.settle()
	h.advance(49 * time.Millisecond)
	if len(probes()) != 1 {
		t.Fatalf("%d probes before the interval", len(probes()))
	}
	h.advance(time.Millisecond)
	if len(probes()) != 2 {
		t.Fatalf("%d probes after 50ms, want 2", len(probes()))
	}
	probes()[1].die(0)
	h.settle()
	h.wantState("db", stateReady)
	h.wantState("web", stateRunning)
	// The ready process crashes; then its next run never becomes ready.
	h.exit("db", 1)
	h.wantState("db", stateBackoff)
	h.advance(time.Second)
	h.wantState("db", stateStarting)
	h.advance(5 * time.Second) // the third probe never answers
	h.wantEvent("db not ready after 5s")
	h.wantState("db", stateBackoff)
	if c := probes()[2]; !slices.Contains(c.signals, syscall.SIGKILL) {
		t.Fatalf("the hanging probe was not killed: %v", c.signals)
	}
	// A ready process that exits cleanly with restart on-failure ends for good, and on_end stops.
	h.advance(2 * time.Second)
	probes()[len(probes())-1].die(0)
	h.settle()
	h.wantState("db", stateReady)
	h.exit("db", 0)
	h.wantState("db", stateExited)
	if done, code := h.done(); !done || code != 0 {
		t.Fatalf("done %v code %d", done, code)
	}
	// A process that exits while starting, for good.
	h = newHarness(t, `
[process.a]
cmd = "x"
ready = "exec:check"
[process.b]
cmd = "x"
ready = "exec:check"
success_codes = [0, 7]
on_end = "ignore"
[process.c]
cmd = "x"
ready = "exec:check"
restart = "always"
[process.d]
cmd = "x"
on_end = "ignore"
ready = "exec:check"
`, tr).run()
	h.exit("b", 7)
	h.wantState("b", stateExited)
	h.exit("c", 1)
	h.wantState("c", stateBackoff)
	h.l.probes["d"][0].die(0)
	h.settle()
	h.exit("d", 2)
	h.wantState("d", stateFatal)
	h.exit("a", 1)
	h.wantState("a", stateFatal)
}

func scenarioStartFailures(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.never]
cmd = "x"
on_end = "ignore"
[process.always]
cmd = "x"
restart = "always"
backoff = "1s"
[process.fine]
cmd = "x"
success_codes = [0, 126]
on_end = "ignore"
`, tr)
	h.l.fail["never"] = errors.New("no such file")
	h.l.fail["always"] = errors.New("no such file")
	h.l.fail["fine"] = errors.New("no such file")
	h.run()
	h.wantEvent("never cannot start: no such file")
	h.wantState("never", stateFatal)
	h.wantState("always", stateBackoff)
	h.wantState("fine", stateExited)
	h.advance(time.Second)
	h.wantState("always", stateBackoff) // failed again
	h.wantEvent("always restarting in 2s")
	// Fixed now: it starts at its next try.
	delete(h.l.fail, "always")
	h.advance(2 * time.Second)
	h.wantState("always", stateRunning)
	// A held process whose start fails: the policy judges it like any exit.
	h.stop("always")
	h.wantState("always", stateHeld)
	h.l.fail["always"] = errors.New("gone")
	h.tryStart("always")
	h.wantState("always", stateBackoff)
	// Exited and fatal ones too.
	h.l.fail["never"] = errors.New("still not")
	h.tryStart("never")
	h.wantState("never", stateFatal)
	h.tryStart("fine")
	h.wantState("fine", stateExited)
	h.l.fail["fine"] = nil
	h.l.fail["never"] = nil
	h.l.fail["always"] = nil
	// held, start fails with a success code -> exited; -> fatal
	h2 := newHarness(t, `
[process.h]
cmd = "x"
success_codes = [0, 126]
on_end = "ignore"
[process.g]
cmd = "x"
on_end = "ignore"
[process.e]
cmd = "x"
on_end = "ignore"
restart = "on-failure"
[process.f]
cmd = "x"
on_end = "ignore"
restart = "on-failure"
[process.keep]
cmd = "x"
`, tr).run()
	for _, n := range []string{"h", "g"} {
		h2.stop(n)
		h2.wantState(n, stateHeld)
		h2.l.fail[n] = errors.New("gone")
		h2.tryStart(n)
	}
	h2.wantState("h", stateExited)
	h2.wantState("g", stateFatal)
	// exited -> backoff, fatal -> backoff: a start that fails, with a restart policy.
	h2.exit("e", 0)
	h2.wantState("e", stateExited)
	h2.l.fail["e"] = errors.New("gone")
	h2.tryStart("e")
	h2.wantState("e", stateBackoff)
}

// scenarioEndStates: the moves into fatal and exited that only failed starts make.
func scenarioEndStates(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.gaveup]
cmd = "x"
restart = "on-failure"
max_restarts = 1
restart_window = "10s"
backoff = "1s"
on_end = "ignore"
[process.okcode]
cmd = "x"
success_codes = [0, 126]
on_end = "ignore"
[process.clean]
cmd = "x"
on_end = "ignore"
[process.fails]
cmd = "x"
restart = "always"
max_restarts = 2
restart_window = "1m"
backoff = "1s"
backoff_max = "1s"
on_end = "ignore"
[process.unready]
cmd = "x"
ready = "exec:c"
ready_timeout = "1s"
on_end = "ignore"
[process.keep]
cmd = "x"
`, tr)
	h.l.fail["fails"] = errors.New("gone")
	h.run()
	// fatal -> backoff: a start over the API that fails, with the policy's window clear again.
	h.exit("gaveup", 1)
	h.advance(time.Second)
	h.exit("gaveup", 1)
	h.wantState("gaveup", stateFatal)
	h.advance(11 * time.Second)
	h.l.fail["gaveup"] = errors.New("gone")
	_ = h.tryStart("gaveup")
	h.wantState("gaveup", stateBackoff)
	// fatal -> exited: a failed start whose code counts as success.
	h.exit("okcode", 1)
	h.wantState("okcode", stateFatal)
	h.l.fail["okcode"] = errors.New("gone")
	_ = h.tryStart("okcode")
	h.wantState("okcode", stateExited)
	// exited -> fatal.
	h.exit("clean", 0)
	h.wantState("clean", stateExited)
	h.l.fail["clean"] = errors.New("gone")
	_ = h.tryStart("clean")
	h.wantState("clean", stateFatal)
	// backoff -> fatal: restarts that keep failing to start, until max_restarts.
	h.wantState("fails", stateFatal)
	h.wantEvent("fails gave up: 2 restarts within 1m0s")
	// stopping -> fatal: not ready in time, no restart.
	h.wantState("unready", stateFatal)
	h.wantEvent("unready not ready after 1s (no answer yet): stopping it")
}

func scenarioStartAgain(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.o]
cmd = "x"
oneshot = true
on_end = "ignore"
[process.f]
cmd = "x"
on_end = "ignore"
[process.keep]
cmd = "x"
`, tr).run()
	h.exit("o", 0)
	h.exit("f", 1)
	h.wantState("o", stateExited)
	h.wantState("f", stateFatal)
	for _, n := range []string{"o", "f"} {
		h.start(n)
		h.wantState(n, stateRunning)
	}
	h2 := newHarness(t, `
[process.p]
cmd = "x"
ready = "exec:c"
[process.q]
cmd = "x"
ready = "exec:c"
oneshot = false
on_end = "ignore"
[process.keep]
cmd = "x"
`, tr).run()
	h2.stop("q")
	h2.wantState("q", stateHeld)
	h2.start("q")
	h2.wantState("q", stateStarting)
	h2.exit("q", 1)
	h2.wantState("q", stateFatal)
	h2.start("q")
	h2.wantState("q", stateStarting)
	h2.exit("q", 0)
	h2.wantState("q", stateExited)
	h2.start("q")
	h2.wantState("q", stateStarting)
}

func scenarioShutdownStates(t *testing.T, tr *transitions) {
	h := newHarness(t, `
[process.base]
cmd = "x"
ready = "exec:c"
[process.waits]
cmd = "x"
after = ["base"]
[process.back]
cmd = "x"
restart = "always"
backoff = "1s"
[process.det]
cmd = "x"
detach = true
[process.run]
cmd = "x"
[process.rdy]
cmd = "x"
ready = "exec:c"
`, tr).run()
	h.exit("back", 1)
	h.wantState("back", stateBackoff)
	h.exit("det", 0)
	h.wantState("det", stateExited)
	h.l.probes["rdy"][0].die(0)
	h.settle()
	h.wantState("rdy", stateReady)
	// A detached process's end is not gaffer's; a crash of a ready one with on_end stops all.
	if done, _ := h.done(); done {
		t.Fatal("a detached process's exit stopped gaffer")
	}
	h.s.shutdown(0, "test")
	h.settle()
	h.wantState("waits", stateExited)
	h.wantState("back", stateExited)
	h.advance(time.Minute)
	if n := h.starts("back"); n != 1 {
		t.Fatalf("back restarted during the shutdown: %d starts", n)
	}
	if done, code := h.done(); !done || code != 0 {
		t.Fatalf("done %v code %d", done, code)
	}
	// A process that is running when its level's turn has not come, and crashes: exited.
	h = newHarness(t, `
[process.low]
cmd = "x"
[process.high]
cmd = "x"
after = ["low"]
stop_timeout = "5s"
`, tr)
	h.l.stubborn["high"] = true
	h.run()
	h.s.shutdown(0, "test")
	h.settle()
	h.exit("low", 1)
	h.wantState("low", stateExited)
	h.exit("high", 143)
	if done, code := h.done(); !done || code != 1 {
		t.Fatalf("done %v code %d, want the unclean 1", done, code)
	}
	// A second stop signal kills everything at once.
	h = newHarness(t, "[process.a]\ncmd = \"x\"\n", tr)
	h.l.stubborn["a"] = true
	h.run()
	h.s.onSignal(syscall.SIGTERM)
	h.settle()
	h.wantState("a", stateStopping)
	h.s.onSignal(syscall.SIGINT)
	h.settle()
	if done, code := h.done(); !done || code != 137 {
		t.Fatalf("done %v code %d, want 137", done, code)
	}
	// Forwarded signals reach every running process.
	h = newHarness(t, "[process.a]\ncmd = \"x\"\n[process.b]\ncmd = \"x\"\n", tr).run()
	h.s.onSignal(syscall.SIGUSR1)
	for _, n := range []string{"a", "b"} {
		if !slices.Equal(h.current(n).signals, []syscall.Signal{syscall.SIGUSR1}) {
			t.Fatalf("%s got %v", n, h.current(n).signals)
		}
	}
	// A ready instance that starts over the API mid-shutdown is refused.
	h.s.shutdown(0, "test")
	if err := h.s.startOne(h.inst("a")); err == nil {
		t.Fatal("start accepted during the shutdown")
	}
	if err := h.s.scale("a", 2); err == nil {
		t.Fatal("scale accepted during the shutdown")
	}
}

func scenarioBatches(t *testing.T, tr *transitions) {
	h := newHarness(t, "[process.w]\ncmd = \"x\"\nnumprocesses = 100\n", tr)
	h.s.startReady()
	h.s.startSome()
	running := 0
	for _, in := range h.s.insts {
		if in.state == stateRunning {
			running++
		}
	}
	if running != startBatch || !h.s.starting {
		t.Fatalf("%d started in one pass (want %d), more to come %v", running, startBatch, h.s.starting)
	}
	h.settle()
	for _, in := range h.s.insts {
		if in.state != stateRunning {
			t.Fatalf("%s is %v", in.name, in.state)
		}
	}
}

// serveCalls runs the API's loop calls on a goroutine of their own while the test goroutine waits
// in one (it touches nothing meanwhile); the returned function stops it.
func serveCalls(s *supervisor) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case f := <-s.calls:
				f()
			case <-stop:
				return
			}
		}
	}()
	return func() { close(stop); <-done }
}

// TestGroupNameMeansEveryInstance: after a scale-up from one instance (web, web.2, web.3), "web"
// means all three for signal, start, stop and restart, and the instance web for stdin and logs;
// an instance already as asked is no conflict while another was acted on (found in review: stop
// web reached only web, and restart of a group with one stopped instance failed).
func TestGroupNameMeansEveryInstance(t *testing.T) {
	h := newHarness(t, "[process.web]\ncmd = \"x\"\n[process.keep]\ncmd = \"x\"\n", nil).run()
	if err := h.s.scale("web", 3); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if got := len(h.s.find("web")); got != 3 {
		t.Fatalf("find(web) = %d instances, want 3", got)
	}
	if in, err := h.s.findOne("web"); err != nil || in.name != "web" {
		t.Fatalf("findOne(web) = %v, %v; want the instance web", in, err)
	}
	if in, err := h.s.findOne("web.3"); err != nil || in.name != "web.3" {
		t.Fatalf("findOne(web.3) = %v, %v", in, err)
	}
	h.stop("web.2")
	stop := serveCalls(h.s)
	err := h.s.each("web", h.s.stopOne)
	stop()
	if err != nil {
		t.Fatalf("stop web with web.2 already stopped: %v", err)
	}
	h.settle()
	for _, n := range []string{"web", "web.2", "web.3"} {
		h.wantState(n, stateHeld)
	}
	stop = serveCalls(h.s)
	err = h.s.each("web", h.s.stopOne)
	stop()
	if err == nil {
		t.Fatal("stop web with every instance stopped is no conflict")
	}
	h.start("web.3")
	stop = serveCalls(h.s)
	err = h.s.each("web", h.s.startOne)
	stop()
	if err != nil {
		t.Fatalf("start web with web.3 already running: %v", err)
	}
	h.settle()
	for _, n := range []string{"web", "web.2", "web.3"} {
		h.wantState(n, stateRunning)
	}
}

// TestShutdownGoesOnWithoutAStuckProcess: a process that not even SIGKILL ends (D state) holds its
// level for finalWait after the SIGKILL, not for ever: the levels below are stopped without it
// (found in review).
func TestShutdownGoesOnWithoutAStuckProcess(t *testing.T) {
	h := newHarness(t, `
[process.low]
cmd = "x"
[process.high]
cmd = "x"
after = ["low"]
stop_timeout = "1s"
`, nil)
	h.l.stuck["high"] = true
	var warned []string
	h.s.warnf = func(f string, a ...any) { warned = append(warned, fmt.Sprintf(f, a...)) }
	h.run()
	h.s.shutdown(0, "test")
	h.settle()
	h.advance(time.Second) // the stop timeout: SIGKILL, which does nothing
	h.wantState("high", stateStopping)
	if sigs := h.current("low").signals; len(sigs) != 0 {
		t.Fatalf("low signalled while high still stops: %v", sigs)
	}
	h.advance(finalWait)
	if len(warned) != 1 || !strings.Contains(warned[0], "high still not gone") {
		t.Fatalf("warnings %q", warned)
	}
	if got := h.l.children["low"][0].signals; !slices.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
		t.Fatalf("low got %v, want its stop signal", got)
	}
	if done, _ := h.done(); !done {
		t.Fatal("the shutdown did not reach the sweep")
	}
}

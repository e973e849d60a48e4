package pid1

import (
	"testing"
	"time"
)

func TestScheduleRunsSkipsOverlapAndKeepsGafferUp(t *testing.T) {
	h := newHarness(t, `
[process.job]
cmd = "x"
oneshot = true
schedule = "@every 10s"
`, nil).run()
	h.wantState("job", statePending)
	if h.starts("job") != 0 {
		t.Fatal("a scheduled job ran at start without run_at_start")
	}
	if done, _ := h.done(); done {
		t.Fatal("gaffer stopped with only a scheduled job")
	}
	next := h.inst("job").sched.next
	if want := h.clock.Now().Add(10 * time.Second); !next.Equal(want) {
		t.Fatalf("next run %v, want %v", next, want)
	}
	h.advance(10 * time.Second)
	if h.starts("job") != 1 {
		t.Fatalf("starts %d after the first time", h.starts("job"))
	}
	// Still running at the next time: that run is skipped.
	h.advance(10 * time.Second)
	if h.starts("job") != 1 {
		t.Fatalf("an overlapping run started: %d", h.starts("job"))
	}
	h.wantEvent("job: run of")
	h.exit("job", 3) // a failed run: on_end ignore by default, and the schedule goes on
	h.wantState("job", stateExited)
	if done, _ := h.done(); done {
		t.Fatal("gaffer stopped after a failed scheduled run")
	}
	h.advance(10 * time.Second)
	if h.starts("job") != 2 {
		t.Fatalf("starts %d, want 2", h.starts("job"))
	}
	h.exit("job", 0)
	// Started now over the API: the schedule is unchanged.
	h.start("job")
	if h.starts("job") != 3 {
		t.Fatalf("start over the API: %d starts", h.starts("job"))
	}
}

func TestScheduleRunAtStart(t *testing.T) {
	h := newHarness(t, `
[process.job]
cmd = "x"
oneshot = true
schedule = "0 3 * * *"
run_at_start = true
`, nil).run()
	if h.starts("job") != 1 {
		t.Fatalf("run_at_start: %d starts", h.starts("job"))
	}
	h.exit("job", 0)
	next := h.inst("job").sched.next
	if next.Hour() != 3 || next.Minute() != 0 || !next.After(h.clock.Now()) {
		t.Fatalf("next run %v", next)
	}
}

package pid1

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"gaffer/config"
)

func TestDecideExit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	proc := func(edit func(p *config.Process)) *config.Process {
		p := config.NewProcess("w", "x")
		p.Backoff, p.BackoffMax = time.Second, 8*time.Second
		if edit != nil {
			edit(&p)
		}
		return &p
	}
	always := func(p *config.Process) { p.Restart = config.RestartAlways }
	onFailure := func(p *config.Process) { p.Restart = config.RestartOnFailure }
	fresh := history{started: t0, delay: time.Second}
	cases := []struct {
		name string
		p    *config.Process
		h    history
		f    exitFacts
		want exitDecision
	}{
		{name: "never, success: ends, on_end stops", p: proc(nil), h: fresh, f: exitFacts{code: 0},
			want: exitDecision{next: stateExited, success: true, shutdown: true}},
		{name: "never, failure: fatal, on_end stops", p: proc(nil), h: fresh, f: exitFacts{code: 3},
			want: exitDecision{next: stateFatal, shutdown: true}},
		{name: "on_end ignore", p: proc(func(p *config.Process) { p.OnEnd = config.OnEndIgnore }), h: fresh, f: exitFacts{code: 3},
			want: exitDecision{next: stateFatal}},
		{name: "oneshot success: no on_end", p: proc(func(p *config.Process) { p.Oneshot = true }), h: fresh, f: exitFacts{code: 0},
			want: exitDecision{next: stateExited, success: true}},
		{name: "oneshot failure: on_end", p: proc(func(p *config.Process) { p.Oneshot = true }), h: fresh, f: exitFacts{code: 1},
			want: exitDecision{next: stateFatal, shutdown: true}},
		{name: "success code other than 0", p: proc(func(p *config.Process) { p.SuccessCodes = []int{0, 7}; p.OnEnd = config.OnEndIgnore }), h: fresh, f: exitFacts{code: 7},
			want: exitDecision{next: stateExited, success: true}},
		{name: "always restarts after success", p: proc(always), h: fresh, f: exitFacts{code: 0},
			want: exitDecision{next: stateBackoff, success: true, delay: time.Second, hist: history{started: t0, delay: 2 * time.Second, recent: []time.Time{t0}}}},
		{name: "on-failure ends after success", p: proc(onFailure), h: fresh, f: exitFacts{code: 0},
			want: exitDecision{next: stateExited, success: true, shutdown: true}},
		{name: "on-failure restarts after failure", p: proc(onFailure), h: fresh, f: exitFacts{code: 1},
			want: exitDecision{next: stateBackoff, delay: time.Second, hist: history{started: t0, delay: 2 * time.Second, recent: []time.Time{t0}}}},
		{name: "unready stop is a failure", p: proc(onFailure), h: fresh, f: exitFacts{code: 143, stop: stopUnready},
			want: exitDecision{next: stateBackoff, delay: time.Second, hist: history{started: t0, delay: 2 * time.Second, recent: []time.Time{t0}}}},
		{name: "unready stop, code 0, never: fatal", p: proc(nil), h: fresh, f: exitFacts{code: 0, stop: stopUnready},
			want: exitDecision{next: stateFatal, shutdown: true}},
		{name: "held over the API", p: proc(always), h: fresh, f: exitFacts{code: 143, stop: stopHold},
			want: exitDecision{next: stateHeld, hist: fresh}},
		{name: "scaled away", p: proc(always), h: fresh, f: exitFacts{code: 143, stop: stopRemove},
			want: exitDecision{next: stateRemoved, hist: fresh}},
		{name: "scaled away during the shutdown", p: proc(always), h: fresh, f: exitFacts{code: 143, stop: stopRemove, stopping: true},
			want: exitDecision{next: stateRemoved, hist: fresh}},
		{name: "shutdown, clean on the stop signal", p: proc(always), h: fresh, f: exitFacts{code: 143, stop: stopShutdown, stopping: true},
			want: exitDecision{next: stateExited, hist: fresh}},
		{name: "shutdown, clean with a success code", p: proc(nil), h: fresh, f: exitFacts{code: 0, stop: stopShutdown, stopping: true},
			want: exitDecision{next: stateExited, hist: fresh}},
		{name: "shutdown, other code: unclean", p: proc(nil), h: fresh, f: exitFacts{code: 2, stop: stopShutdown, stopping: true},
			want: exitDecision{next: stateExited, unclean: true, hist: fresh}},
		{name: "shutdown, needed SIGKILL: unclean", p: proc(func(p *config.Process) { p.StopSignal = syscall.SIGKILL }), h: fresh, f: exitFacts{code: 137, killed: true, stopping: true},
			want: exitDecision{next: stateExited, unclean: true, hist: fresh}},
		{name: "shutdown, another stop signal", p: proc(func(p *config.Process) { p.StopSignal = syscall.SIGQUIT }), h: fresh, f: exitFacts{code: 131, stopping: true},
			want: exitDecision{next: stateExited, hist: fresh}},
		{name: "detached", p: proc(func(p *config.Process) { p.Detach = true }), h: fresh, f: exitFacts{code: 9},
			want: exitDecision{next: stateExited, hist: fresh}},
		{name: "max_restarts reached: gave up", p: proc(func(p *config.Process) { always(p); p.MaxRestarts = 2; p.RestartWindow = time.Minute }),
			h:    history{started: t0, delay: 4 * time.Second, recent: []time.Time{t0.Add(-30 * time.Second), t0.Add(-10 * time.Second)}},
			f:    exitFacts{code: 1},
			want: exitDecision{next: stateFatal, gaveUp: true, shutdown: true, hist: history{started: t0, delay: 4 * time.Second, recent: []time.Time{t0.Add(-30 * time.Second), t0.Add(-10 * time.Second)}}}},
		{name: "old restarts leave the window", p: proc(func(p *config.Process) { always(p); p.MaxRestarts = 2; p.RestartWindow = time.Minute }),
			h:    history{started: t0, delay: 4 * time.Second, recent: []time.Time{t0.Add(-90 * time.Second), t0.Add(-10 * time.Second)}},
			f:    exitFacts{code: 1},
			want: exitDecision{next: stateBackoff, delay: 4 * time.Second, hist: history{started: t0, delay: 8 * time.Second, recent: []time.Time{t0.Add(-10 * time.Second), t0}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want.hist.delay == 0 {
				c.want.hist = c.h // no restart: the history is as it was
			}
			got := decideExit(c.p, c.h, c.f, t0)
			if got.next != c.want.next || got.delay != c.want.delay || got.gaveUp != c.want.gaveUp || got.success != c.want.success ||
				got.shutdown != c.want.shutdown || got.unclean != c.want.unclean || got.hist.delay != c.want.hist.delay ||
				!slices.Equal(got.hist.recent, c.want.hist.recent) {
				t.Errorf("decideExit =\n %+v\nwant\n %+v", got, c.want)
			}
		})
	}
}

func TestNextBackoff(t *testing.T) {
	const s = time.Second
	cases := []struct {
		cur, base, max, ran time.Duration
		now, next           time.Duration
	}{
		{cur: 1 * s, base: 1 * s, max: 30 * s, ran: 0, now: 1 * s, next: 2 * s},
		{cur: 2 * s, base: 1 * s, max: 30 * s, ran: 0, now: 2 * s, next: 4 * s},
		{cur: 16 * s, base: 1 * s, max: 30 * s, ran: 0, now: 16 * s, next: 30 * s},
		{cur: 30 * s, base: 1 * s, max: 30 * s, ran: 29 * s, now: 30 * s, next: 30 * s},
		{cur: 30 * s, base: 1 * s, max: 30 * s, ran: 30 * s, now: 1 * s, next: 2 * s}, // a long run resets
		{cur: 0, base: 100 * time.Millisecond, max: s, ran: 0, now: 100 * time.Millisecond, next: 200 * time.Millisecond},
		{cur: 5 * s, base: 5 * s, max: 5 * s, ran: 0, now: 5 * s, next: 5 * s}, // base == max: constant
	}
	for _, c := range cases {
		now, next := nextBackoff(c.cur, c.base, c.max, c.ran)
		if now != c.now || next != c.next {
			t.Errorf("nextBackoff(%v, %v, %v, ran %v) = %v, %v; want %v, %v", c.cur, c.base, c.max, c.ran, now, next, c.now, c.next)
		}
	}
}

func TestRestartWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	cases := []struct {
		name   string
		recent []time.Time
		max    int
		want   []time.Time
		giveUp bool
	}{
		{name: "unlimited keeps all", recent: []time.Time{at(-100), at(-1)}, max: 0, want: []time.Time{at(-100), at(-1)}},
		{name: "under max", recent: []time.Time{at(-10)}, max: 2, want: []time.Time{at(-10)}},
		{name: "at max", recent: []time.Time{at(-10), at(-5)}, max: 2, want: []time.Time{at(-10), at(-5)}, giveUp: true},
		{name: "old ones drop", recent: []time.Time{at(-61), at(-5)}, max: 2, want: []time.Time{at(-5)}},
		{name: "exactly the window stays", recent: []time.Time{at(-60), at(-5)}, max: 2, want: []time.Time{at(-60), at(-5)}, giveUp: true},
	}
	for _, c := range cases {
		in := slices.Clone(c.recent)
		got, giveUp := restartWindow(c.recent, t0, time.Minute, c.max)
		if !slices.Equal(got, c.want) || giveUp != c.giveUp {
			t.Errorf("%s: got %v %v, want %v %v", c.name, got, giveUp, c.want, c.giveUp)
		}
		if !slices.Equal(c.recent, in) {
			t.Errorf("%s: restartWindow changed its argument", c.name)
		}
	}
}

func TestShutdownCode(t *testing.T) {
	cases := []struct {
		began, firstUnclean int
		unclean             bool
		want                int
	}{
		{0, 0, false, 0},
		{0, 137, true, 137},
		{3, 137, true, 3}, // the failure that caused the shutdown wins
		{3, 0, false, 3},
	}
	for _, c := range cases {
		if got := shutdownCode(c.began, c.firstUnclean, c.unclean); got != c.want {
			t.Errorf("shutdownCode(%d, %d, %v) = %d, want %d", c.began, c.firstUnclean, c.unclean, got, c.want)
		}
	}
}

func TestNothingLeft(t *testing.T) {
	p := config.NewProcess("w", "x")
	det := config.NewProcess("d", "x")
	det.Detach = true
	in := func(st state, cfg *config.Process) *instance { return &instance{cfg: cfg, state: st} }
	never := func(*instance) bool { return false }
	always := func(*instance) bool { return true }
	cases := []struct {
		name    string
		insts   []*instance
		blocked func(*instance) bool
		want    bool
	}{
		{"empty", nil, never, true},
		{"all ended", []*instance{in(stateExited, &p), in(stateFatal, &p)}, never, true},
		{"one running", []*instance{in(stateExited, &p), in(stateRunning, &p)}, never, false},
		{"one in backoff", []*instance{in(stateBackoff, &p)}, never, false},
		{"one stopping", []*instance{in(stateStopping, &p)}, never, false},
		{"held may start again", []*instance{in(stateHeld, &p)}, never, false},
		{"pending that will start", []*instance{in(statePending, &p)}, never, false},
		{"pending that never can", []*instance{in(statePending, &p)}, always, true},
		{"a detached one running does not count", []*instance{in(stateRunning, &det)}, never, true},
	}
	for _, c := range cases {
		if got := nothingLeft(c.insts, c.blocked); got != c.want {
			t.Errorf("%s: nothingLeft = %v, want %v", c.name, got, c.want)
		}
	}
}

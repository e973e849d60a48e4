package pid1

import (
	"slices"
	"time"

	"gaffer/config"
)

// The decisions of `gaffer up`, as pure functions of what happened and what was configured: the
// loop gathers the facts, these say what follows, the loop carries it out.

// exitFacts is what is known of one exit of an instance's process.
type exitFacts struct {
	code     int
	stop     stopReason // why gaffer stopped it; stopNone when it ended by itself
	killed   bool       // its stop timeout ran out and it got SIGKILL
	stopping bool       // gaffer is shutting down
}

// history is what an instance remembers of its earlier runs.
type history struct {
	started time.Time     // when the process that exited was started
	delay   time.Duration // the next restart delay
	recent  []time.Time   // restarts within restart_window, oldest first
}

// exitDecision says what follows an exit.
type exitDecision struct {
	next state
	// restart: in next == stateBackoff, the delay before the start, and the history after it.
	delay time.Duration
	hist  history
	// gaveUp: max_restarts within restart_window was reached.
	gaveUp bool
	// success: the exit counts as a success (a success code, and not stopped for being unready).
	success bool
	// shutdown: on_end says the container stops, with code.
	shutdown bool
	// unclean: during the shutdown, it did not end on its stop signal (or needed SIGKILL): the
	// container's exit code reports it.
	unclean bool
}

// decideExit applies p's policy to an exit at now.
func decideExit(p *config.Process, h history, f exitFacts, now time.Time) exitDecision {
	d := exitDecision{hist: h}
	switch {
	case f.stop == stopRemove:
		d.next = stateRemoved
		return d
	case f.stopping:
		d.next = stateExited
		clean := f.code == 128+int(p.StopSignal) || slices.Contains(p.SuccessCodes, f.code)
		d.unclean = f.killed || !clean
		return d
	case f.stop == stopHold:
		d.next = stateHeld
		return d
	case p.Detach:
		d.next = stateExited
		return d
	}
	d.success = slices.Contains(p.SuccessCodes, f.code) && f.stop != stopUnready && f.stop != stopUnhealthy
	if p.Oneshot && d.success {
		d.next = stateExited
		return d
	}
	// An unhealthy process is restarted whatever its policy (on_unhealthy's "restart").
	if p.Restart == "always" || (p.Restart == "on-failure" && !d.success) || f.stop == stopUnhealthy {
		recent, giveUp := restartWindow(h.recent, now, p.RestartWindow, p.MaxRestarts)
		if !giveUp {
			d.next = stateBackoff
			d.delay, d.hist.delay = nextBackoff(h.delay, p.Backoff, p.BackoffMax, now.Sub(h.started))
			d.hist.recent = append(recent, now)
			return d
		}
		d.hist.recent, d.gaveUp = recent, true
	}
	d.next = stateExited
	// A scheduled run that failed is one run: the schedule goes on (it is fatal only when it gave up).
	if d.gaveUp || (!d.success && p.Schedule.IsZero()) {
		d.next = stateFatal
	}
	d.shutdown = p.OnEnd != "ignore" && !(p.Oneshot && d.success)
	return d
}

// nextBackoff returns the delay before this restart and the one after it: the delay doubles at
// every restart up to max, and goes back to base once a run lasted max or longer.
func nextBackoff(cur, base, max time.Duration, ran time.Duration) (now, next time.Duration) {
	if ran >= max || cur <= 0 {
		cur = base
	}
	return cur, min(cur*2, max)
}

// restartWindow drops the restarts older than window from recent and reports whether max of
// them (max > 0) are left, which means: give up.
func restartWindow(recent []time.Time, now time.Time, window time.Duration, max int) ([]time.Time, bool) {
	if max <= 0 {
		return recent, false
	}
	recent = slices.DeleteFunc(slices.Clone(recent), func(t time.Time) bool { return now.Sub(t) > window })
	return recent, len(recent) >= max
}

// nothingLeft reports whether `gaffer up` is done: nothing runs and nothing will, so it may shut
// down with the last failure's code. A held instance may still be started over the API; a
// pending one whose dependencies can still be met will start.
func nothingLeft(insts []*instance, blocked func(*instance) bool) bool {
	for _, in := range insts {
		switch {
		case in.state == stateHeld:
			return false
		case in.state.alive() && !in.cfg.Detach:
			return false
		case in.state == statePending && !blocked(in):
			return false
		case !in.sched.next.IsZero(): // a scheduled oneshot: it runs again
			return false
		}
	}
	return true
}

// shutdownCode is the container's exit code: the first unclean stop during the shutdown, else
// the code the shutdown began with (the failure that caused it, or 0).
func shutdownCode(began int, firstUnclean int, unclean bool) int {
	if unclean && began == 0 {
		return firstUnclean
	}
	return began
}

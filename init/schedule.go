package pid1

import (
	"time"
)

// schedState is when a scheduled oneshot (schedule = "...") runs next. Its timer is not one of the
// run's (in.timers): a run's start and end forget those, and the schedule goes on across runs.
type schedState struct {
	next  time.Time // the next run; zero when there is none (not scheduled, or stopped)
	timer Timer
	seq   int  // the armed timer, so that one stopped too late is ignored
	due   bool // a pending instance may start: its time came (or run_at_start)
}

// scheduled reports whether in runs on a schedule.
func scheduled(in *instance) bool { return !in.cfg.Schedule.IsZero() }

// initSchedules arms the schedule of every scheduled instance; those with run_at_start are due at
// once, the others wait in pending for their time.
func (s *supervisor) initSchedules() {
	for _, in := range s.insts {
		if scheduled(in) {
			in.sched.due = in.cfg.RunAtStart
			s.armSchedule(in, s.clock.Now())
		}
	}
}

// armSchedule sets in's timer for its first time after from.
func (s *supervisor) armSchedule(in *instance, from time.Time) {
	s.stopSchedule(in)
	next := in.cfg.Schedule.Next(from)
	if next.IsZero() {
		s.warnf("%s: schedule %q never comes", in.name, in.cfg.Schedule.Spec)
		return
	}
	in.sched.next = next
	in.sched.seq++
	ev := event{kind: evSchedule, inst: in, seq: in.sched.seq}
	in.sched.timer = s.clock.AfterFunc(next.Sub(s.clock.Now()), func() { s.post(ev) })
}

// stopSchedule cancels in's next run.
func (s *supervisor) stopSchedule(in *instance) {
	if in.sched.timer != nil {
		in.sched.timer.Stop()
		in.sched.timer = nil
	}
	in.sched.next = time.Time{}
}

// onScheduled runs in when its time came, unless its last run is still going (that run is
// skipped and reported) or it was stopped over the API (held: no runs until it is started).
func (s *supervisor) onScheduled(ev event) {
	in := ev.inst
	if ev.seq != in.sched.seq || in.sched.timer == nil || in.state == stateRemoved || s.stopping != nil {
		return
	}
	due := in.sched.next
	in.sched.timer = nil
	// A timer may fire a hair before the wall clock reaches its time: never the same time twice.
	s.armSchedule(in, latest(s.clock.Now(), due))
	switch {
	case in.proc != nil || in.state == stateStopping || in.state == stateStarting:
		s.out.Event("%s: run of %s skipped: the previous run is still going", in.name, due.Format(time.DateTime))
		s.emit("skip", in, -1, "previous run still going")
	case in.state == stateHeld || in.state == stateBackoff || in.retire:
	default:
		// Through pending, so that the run waits for its dependencies like any start.
		if in.state != statePending {
			s.to(in, statePending, "", -1, "")
		}
		in.sched.due = true
		in.hist.delay = in.cfg.Backoff
		s.starting = true
	}
}

// schedView is in's schedule for the API.
func schedView(in *instance) (spec string, next *time.Time) {
	if !scheduled(in) {
		return "", nil
	}
	if !in.sched.next.IsZero() {
		t := in.sched.next
		next = &t
	}
	return in.cfg.Schedule.Spec, next
}

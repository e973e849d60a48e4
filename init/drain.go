package pid1

import (
	"syscall"
	"time"

	"gaffer/core"
	"gaffer/signals"

	"golang.org/x/sys/unix"
)

// drainState is the drain under way (settings.drain): gaffer answers not ready while its
// processes keep running, so that a load balancer stops sending before anything stops.
type drainState struct {
	timer Timer
	seq   int
}

// requestStop begins the shutdown asked for by a stop signal or the API: after the drain when
// one is configured and drain is true, at once otherwise. A request during the drain skips the
// rest of it.
func (s *supervisor) requestStop(drain bool) {
	if s.stopping != nil {
		return
	}
	if s.draining != nil {
		s.out.Event("skipping the rest of the drain")
		s.shutdown(0, "")
		return
	}
	d := s.cfg.Config.Settings.Drain
	if !drain || d <= 0 {
		s.shutdown(0, "")
		return
	}
	s.drainSeq++
	s.draining = &drainState{seq: s.drainSeq}
	ev := event{kind: evDrainEnd, seq: s.drainSeq}
	s.draining.timer = s.clock.AfterFunc(d, func() { s.post(ev) })
	s.out.Event("draining for %v", d)
	s.emit("drain", nil, -1, d.String())
}

// onDrainEnd stops everything once the drain is over.
func (s *supervisor) onDrainEnd(ev event) {
	if s.draining == nil || s.draining.seq != ev.seq || s.stopping != nil {
		return
	}
	s.shutdown(0, "drain over")
}

// endDrain ends the drain, if one is under way: shutdown's part.
func (s *supervisor) endDrain() {
	if s.draining != nil {
		s.draining.timer.Stop()
		s.draining = nil
	}
}

// The drain of `gaffer -- CMD` (--drain): a stop signal is held back for the drain, then
// forwarded; a second one is forwarded at once.

// startDrain holds sig back for the drain and reports true, when a drain applies.
func (l *loop) startDrain(sig syscall.Signal) bool {
	if l.drainTimer != nil {
		l.drainTimer.Stop()
		l.drainTimer = nil
		l.warnf("received SIG%s again: skipping the rest of the drain", signals.Name(sig))
		return false
	}
	if l.cfg.Drain <= 0 || l.drained || (sig != unix.SIGTERM && sig != unix.SIGINT) {
		return false
	}
	l.drained = true
	l.drainSig = sig
	l.drainTimer = fireAfter(l.clock, l.cfg.Drain, l.drainFired)
	l.warnf("received SIG%s: draining for %v before forwarding it", signals.Name(sig), l.cfg.Drain)
	if l.bus != nil {
		l.bus.emit(core.Event{Time: time.Now(), Kind: "drain", Detail: l.cfg.Drain.String()})
	}
	return true
}

// skipDrain: no drain from now on (the API's shutdown with drain=0).
func (l *loop) skipDrain() { l.drained = true }

func (l *loop) draining() bool { return l.drainTimer != nil }

func (l *loop) stopping() bool { return l.sweep != nil || l.stopSent }

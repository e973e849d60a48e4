package pid1

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"gaffer/config"
	"gaffer/core"
)

// healthState is an instance's liveness checks (health = "..."). They run while the instance is
// running or ready, one at a time, health_interval apart from the end of one to the start of the
// next; a stop or an exit ends them with the run's gen, like every timer and probe of the run.
type healthState struct {
	status   string    // core.Health*: unknown until the first result of this run; "" without a check
	failures int       // consecutive failed checks of this run
	lastErr  string    // the last failure's reason
	failed   uint64    // every failed check that counted, since gaffer started
	since    time.Time // when the checks began in this run: failures within health_start do not count
	seq      int       // the check under way (and its timers): older results and timers are stale
	probe    child     // an exec check running
	cancel   context.CancelFunc
	// timer is the next check's, or the exec check's timeout: one at a time, kept here rather
	// than in the run's timers, which would grow by one per check for as long as the run lasts.
	timer Timer
}

// hasHealth reports whether p is checked for liveness.
func hasHealth(p *config.Process) bool {
	return p.Health.Kind != "" && p.Health.Kind != config.ProbeNone
}

// healthEntered is supervisor.to's hook: a run that is up (ready, or running without a readiness
// probe) begins its checks afresh, the first one health_interval later.
func (s *supervisor) healthEntered(in *instance, next state) {
	if !hasHealth(in.cfg) {
		return
	}
	switch next {
	case stateStarting:
		in.health.status, in.health.failures, in.health.lastErr = core.HealthUnknown, 0, ""
	case stateRunning, stateReady:
		in.health.status, in.health.failures, in.health.lastErr = core.HealthUnknown, 0, ""
		in.health.since = s.clock.Now()
		s.healthAfter(in, in.cfg.HealthInterval, evHealth)
	case stateHeld, stateExited, stateFatal:
		// Not running: nothing to be healthy or not (a held process must not fail alive).
		in.health.status, in.health.failures = core.HealthUnknown, 0
	}
}

// healthAfter arms in's one health timer: kind after d, for the next check (a new seq) or the
// timeout of the check under way.
func (s *supervisor) healthAfter(in *instance, d time.Duration, kind eventKind) {
	if in.health.timer != nil {
		in.health.timer.Stop()
	}
	if kind == evHealth {
		in.health.seq++
	}
	ev := event{kind: kind, inst: in, gen: in.gen, seq: in.health.seq}
	in.health.timer = s.clock.AfterFunc(d, func() { s.post(ev) })
}

// forgetHealth stops the check under way and the next one: forget's part for the checks.
func (s *supervisor) forgetHealth(in *instance) {
	in.health.seq++ // whatever is still in flight is stale
	if in.health.timer != nil {
		in.health.timer.Stop()
		in.health.timer = nil
	}
	if in.health.cancel != nil {
		in.health.cancel()
		in.health.cancel = nil
	}
	if in.health.probe != nil {
		s.abandon(in.health.probe)
		in.health.probe = nil
	}
}

// checkHealth starts one check of in. An exec check is a child of the loop's, bounded by a timer;
// the others run on a goroutine of their own under a context with health_timeout.
func (s *supervisor) checkHealth(in *instance) {
	if !hasHealth(in.cfg) || !(in.state == stateRunning || in.state == stateReady) || in.health.probe != nil || in.health.cancel != nil {
		return
	}
	in.health.timer = nil // it fired: this check
	seq, probe := in.health.seq, in.cfg.Health
	if probe.Kind == config.ProbeExec {
		p, err := s.launch.startProbe(in, probe.Target)
		if err != nil {
			s.onHealthResult(in, err)
			return
		}
		in.health.probe = p
		s.healthAfter(in, in.cfg.HealthTimeout, evHealthTimeout)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.HealthTimeout)
	in.health.cancel = cancel
	s.checkOff(ctx, in.cfg.HealthTimeout, probe, event{kind: evHealthResult, inst: in, gen: in.gen, seq: seq}, "health check of "+in.name)
}

// onHealthEvent handles the checks' timers and results of the current run.
func (s *supervisor) onHealthEvent(ev event) {
	in := ev.inst
	if ev.seq != in.health.seq {
		return // of a check, or a timer, that was forgotten
	}
	switch ev.kind {
	case evHealth:
		s.checkHealth(in)
	case evHealthResult:
		if in.health.cancel == nil {
			return
		}
		in.health.cancel()
		in.health.cancel = nil
		s.onHealthResult(in, ev.err)
	case evHealthTimeout:
		if in.health.probe == nil {
			return
		}
		s.abandon(in.health.probe)
		in.health.probe = nil
		s.onHealthResult(in, fmt.Errorf("no answer within %v", in.cfg.HealthTimeout))
	}
}

// collectHealth takes the exit of in's exec check, when it came: collect's part for the checks.
func (s *supervisor) collectHealth(in *instance) {
	if in.health.probe == nil {
		return
	}
	select {
	case e := <-in.health.probe.Exit():
		in.health.probe.Release()
		in.health.probe = nil
		if in.health.timer != nil { // its timeout
			in.health.timer.Stop()
			in.health.timer = nil
		}
		var err error
		if c := e.Code(); c != 0 {
			err = fmt.Errorf("exit %d%s", c, describeCode(c))
		}
		s.onHealthResult(in, err)
	default:
	}
}

// onHealthResult counts one check's result and, when health_retries consecutive checks failed,
// does what on_unhealthy says; otherwise it arms the next check.
func (s *supervisor) onHealthResult(in *instance, err error) {
	if !(in.state == stateRunning || in.state == stateReady) {
		return
	}
	h := &in.health
	now := s.clock.Now()
	switch {
	case err == nil:
		was := h.status
		h.status, h.failures = core.HealthHealthy, 0
		if was == core.HealthUnhealthy {
			s.out.Event("%s healthy again", in.name)
			s.emit("healthy", in, -1, "")
		}
	case now.Sub(h.since) < in.cfg.HealthStart:
		h.lastErr = shortError(err)
		s.debugf("%s health check failed within health_start (%v): %s", in.name, in.cfg.HealthStart, h.lastErr)
	default:
		h.failures++
		h.failed++
		h.lastErr = shortError(err)
		if h.failures >= in.cfg.HealthRetries && h.status != core.HealthUnhealthy {
			h.status = core.HealthUnhealthy
			why := fmt.Sprintf("%d checks failed (last: %s)", h.failures, h.lastErr)
			if h.failures == 1 {
				why = "check failed: " + h.lastErr
			}
			s.out.Event("%s unhealthy: %s", in.name, why)
			s.emit("unhealthy", in, -1, why)
			switch in.cfg.OnUnhealthy {
			case config.OnUnhealthyShutdown:
				s.shutdown(1, in.name+" unhealthy")
				return
			case config.OnUnhealthyIgnore:
			default:
				s.stopInstance(in, stopUnhealthy)
				return
			}
		}
	}
	s.healthAfter(in, in.cfg.HealthInterval, evHealth)
}

// shortError is a check's failure without the parts every one repeats: "connect: connection
// refused" rather than "dial tcp 127.0.0.1:8080: connect: connection refused".
func shortError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// healthView is in's liveness for the API.
func healthView(in *instance, p *core.Process) {
	if !hasHealth(in.cfg) {
		return
	}
	p.Health, p.HealthFailures, p.HealthError, p.HealthChecksFailed = in.health.status, in.health.failures, in.health.lastErr, in.health.failed
	if p.Health == "" {
		p.Health = core.HealthUnknown
	}
}

// health answers a health question on the loop (see core.LevelAlive and core.LevelReady).
func (s *supervisor) health(level string, names []string) (core.HealthReport, error) {
	if level != core.LevelAlive && level != core.LevelReady {
		return core.HealthReport{}, fmt.Errorf("level %q: want alive or ready: %w", level, core.ErrBadRequest)
	}
	insts := s.insts
	if len(names) > 0 {
		insts = nil
		for _, n := range names {
			found := s.find(n)
			if len(found) == 0 {
				return core.HealthReport{}, fmt.Errorf("no process %q: %w", n, core.ErrNotFound)
			}
			for _, in := range found {
				if !slices.Contains(insts, in) {
					insts = append(insts, in)
				}
			}
		}
	}
	r := core.HealthReport{Level: level, Draining: s.draining != nil, Stopping: s.stopping != nil, Failing: []core.HealthFailure{}}
	fail := func(in *instance, format string, args ...any) {
		f := core.HealthFailure{Reason: fmt.Sprintf(format, args...)}
		if in != nil {
			f.Name = in.name
		}
		r.Failing = append(r.Failing, f)
	}
	if level == core.LevelReady {
		switch {
		case r.Stopping:
			fail(nil, "stopping")
		case r.Draining:
			fail(nil, "draining")
		}
	}
	for _, in := range insts {
		if in.retire && len(names) == 0 {
			continue // a reload is removing it
		}
		switch {
		case in.state == stateFatal:
			fail(in, "is fatal (exit code %d)", in.code)
			continue
		case in.health.status == core.HealthUnhealthy && hasHealth(in.cfg) && in.proc != nil:
			fail(in, "is unhealthy: %s", in.health.lastErr)
			continue
		}
		if level != core.LevelReady || in.cfg.Detach || scheduled(in) {
			continue
		}
		if in.cfg.Oneshot {
			// A oneshot is ready once it succeeded; unnamed, it does not count (it may be long done).
			if len(names) > 0 && !s.satisfiedOne(in) {
				fail(in, "is %s", in.state)
			}
			continue
		}
		if in.state == stateHeld && len(names) == 0 {
			continue // stopped on purpose over the API
		}
		if !s.isReady(in) {
			fail(in, "is %s", in.state)
		}
	}
	r.OK, r.Checked = len(r.Failing) == 0, len(insts)
	return r, nil
}

// satisfiedOne reports whether one oneshot instance succeeded.
func (s *supervisor) satisfiedOne(in *instance) bool {
	return in.state == stateExited && slices.Contains(in.cfg.SuccessCodes, in.code)
}

package pid1

import "fmt"

// state is where one instance of `gaffer up` is in its life. Every change goes through
// supervisor.to, which checks it against legal, stamps the time and publishes the API event.
//
//	            +-------------------------- start fails (policy) ----------------------+
//	            |                                                                      v
//	pending --start--> starting --probe ok--> ready --+                     backoff, fatal, exited
//	   |        \                                     |                           ^
//	   |         +---> running (no probe) ------------+--exit (policy)-------------+
//	   |                  |                           |
//	   |                  +-----------+---------------+
//	   |                              v
//	   |                          stopping --exit--> held (API stop) | removed (scaled away)
//	   |                                      \----> backoff | fatal | exited (policy, shutdown)
//	   +--scaled away--> removed
//	backoff --timer--> starting | running;  backoff --API stop--> held;  backoff --scale--> removed
//	held | exited | fatal --API start--> starting | running
//	stopping | exited | fatal --reload changed it--> pending (started anew with its new configuration)
//
// The API shows held as "exited": it is stopped until started again.
type state int

const (
	statePending  state = iota // waiting for its dependencies
	stateStarting              // started, readiness not yet seen
	stateRunning               // started, no readiness probe
	stateReady                 // started and its probe succeeded
	stateStopping              // sent its stop signal; stop says why
	stateBackoff               // waiting to restart
	stateHeld                  // stopped over the API: no restart, no on_end, until started again
	stateExited                // ended for good: cleanly, or by the shutdown
	stateFatal                 // gave up, failed, or can never start
	stateRemoved               // scaled away: gone from the table; whatever still names it is stale
)

// String is the state's name in the API and in events.
func (s state) String() string {
	switch s {
	case statePending:
		return "pending"
	case stateStarting:
		return "starting"
	case stateRunning:
		return "running"
	case stateReady:
		return "ready"
	case stateStopping:
		return "stopping"
	case stateBackoff:
		return "backoff"
	case stateHeld, stateExited:
		return "exited"
	case stateFatal:
		return "fatal"
	case stateRemoved:
		return "removed"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// alive reports whether an instance in s has a process (or is about to have one back): the
// states in which gaffer is not done with it.
func (s state) alive() bool {
	switch s {
	case stateStarting, stateRunning, stateReady, stateStopping, stateBackoff:
		return true
	}
	return false
}

// ended reports whether s is one the exit policy may choose for an instance whose process ended.
func (s state) ended() bool {
	return s == stateBackoff || s == stateFatal || s == stateExited
}

// legal reports whether an instance may move from one state to another. A start that fails is
// an exit at once, judged by the policy, so every state that can start can also end.
func legal(from, to state) bool {
	started := to == stateStarting || to == stateRunning
	switch from {
	case statePending, stateHeld:
		return started || to.ended() || to == stateRemoved
	case stateExited, stateFatal:
		// pending: a reload gave it a new configuration; it starts once its dependencies allow.
		return started || to.ended() || to == stateRemoved || to == statePending
	case stateBackoff:
		return started || to.ended() || to == stateRemoved || to == stateHeld
	case stateStarting:
		return to == stateReady || to == stateStopping || to.ended()
	case stateRunning, stateReady:
		return to == stateStopping || to.ended()
	case stateStopping:
		return to == stateHeld || to == stateRemoved || to.ended() || to == statePending
	}
	return false // removed is the end
}

// stopReason is why gaffer stops an instance, which decides what its exit leads to.
type stopReason int

const (
	stopNone      stopReason = iota
	stopUnready              // readiness timed out: the exit is a failure, judged by the policy
	stopHold                 // stopped over the API: held
	stopRemove               // scaled away: removed
	stopShutdown             // gaffer is stopping
	stopUnhealthy            // found unhealthy (its watchdog): restarted, judged as a failure
	stopReload               // a reload changed how it runs: pending again, with its new configuration
)

// to moves in to state next, if that move is legal: it stamps the time and publishes kind (when
// not "") as an API event with code (when >= 0) and detail. An illegal move is a bug: it is
// reported and not made, never a panic in PID 1.
func (s *supervisor) to(in *instance, next state, kind string, code int, detail string) bool {
	if !legal(in.state, next) {
		s.warnf("internal error: %s cannot go from %s to %s", in.name, in.state, next)
		return false
	}
	if s.trace != nil {
		s.trace(in, in.state, next)
	}
	in.state, in.since = next, s.clock.Now()
	s.notifyEntered(in, next) // a new run's notify state; the watchdog while up (notify.go)
	s.healthEntered(in, next) // liveness checks while up (health.go)
	if kind != "" {
		s.emit(kind, in, code, detail)
	}
	return true
}

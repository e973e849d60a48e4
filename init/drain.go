package pid1

import "gaffer/core"

// requestStop begins the shutdown asked for by a stop signal or the API: after the drain when
// one is configured and drain is true, at once otherwise.
func (s *supervisor) requestStop(drain bool) {
	s.shutdown(0, "")
}

// health answers a health question on the loop.
func (s *supervisor) health(level string, names []string) (core.HealthReport, error) {
	return core.HealthReport{OK: true, Level: level}, nil
}

func (l *loop) skipDrain()     {}
func (l *loop) draining() bool { return false }
func (l *loop) stopping() bool { return l.sweep != nil }

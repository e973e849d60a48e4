package pid1

import (
	"bytes"
	"regexp"
	"sync/atomic"
)

// logWatch is a run's readiness from its output (ready = "log:REGEX"): the relays of its stdout
// and stderr hand it every complete line (a line longer than the relay's chunk comes as chunks,
// so it is matched on its first), and the first match makes the run ready. It runs on the relay
// goroutines; once it fired or its run was forgotten it matches nothing more.
type logWatch struct {
	re   *regexp.Regexp
	done atomic.Bool
	fire func()
}

// scan matches the lines of one read.
func (w *logWatch) scan(lines []byte) {
	for len(lines) > 0 && !w.done.Load() {
		line := lines
		if i := bytes.IndexByte(lines, '\n'); i >= 0 {
			line, lines = lines[:i], lines[i+1:]
		} else {
			lines = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'}) // a tty's line end
		if w.re.Match(line) && w.done.CompareAndSwap(false, true) {
			w.fire()
		}
	}
}

// stop makes w match nothing more.
func (w *logWatch) stop() { w.done.Store(true) }

// watchOutput gives a run of in whose readiness comes from its output its logWatch, before its
// relays start: a match is a successful probe of this run.
func (s *supervisor) watchOutput(in *instance) {
	ev := event{kind: evProbeResult, inst: in, gen: in.gen}
	in.logReady = &logWatch{re: in.cfg.Ready.Regexp, fire: func() { s.post(ev) }}
}

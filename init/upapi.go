package pid1

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"gaffer/config"
	"gaffer/core"

	"golang.org/x/sys/unix"
)

// The supervisor has every capability the API knows.
var _ interface {
	core.Backend
	core.Starter
	core.Scaler
	core.InputWriter
	core.LogReader
} = (*supervisor)(nil)

// find returns the instances a name means: one instance by its name, or every instance of a
// configured process by the process's name. Only the loop calls it.
func (s *supervisor) find(name string) []*instance {
	var out, exact []*instance
	for _, in := range s.insts {
		if in.cfg.Name == name {
			out = append(out, in)
		}
		if in.name == name {
			exact = []*instance{in}
		}
	}
	if len(out) > 0 {
		// A process's name means every instance, also when its first is called by that name
		// (a process scaled up from one instance: web, web.2, web.3).
		return out
	}
	return exact
}

// findOne returns the one instance name means, for what needs one (stdin, streams, logs): the
// instance of that name, else the only instance of the process of that name. Only the loop calls
// it.
func (s *supervisor) findOne(name string) (*instance, error) {
	for _, in := range s.insts {
		if in.name == name {
			return in, nil
		}
	}
	switch ins := s.find(name); len(ins) {
	case 0:
		return nil, fmt.Errorf("no process %q: %w", name, core.ErrNotFound)
	case 1:
		return ins[0], nil
	}
	return nil, fmt.Errorf("%s has several instances, name one: %w", name, core.ErrBadRequest)
}

func (s *supervisor) view(in *instance) core.Process {
	p := core.Process{
		Name: in.name, Group: in.cfg.Name, Instance: in.index, State: in.state.String(), Restarts: in.restarts,
		StartedAt: in.started, Oneshot: in.cfg.Oneshot, Ready: s.isReady(in),
		StatusText: in.notify.status,
	}
	if in.proc != nil {
		p.Pid = in.proc.PID()
		p.UptimeS = s.clock.Now().Sub(in.started).Seconds()
	}
	if in.code >= 0 {
		code := in.code
		p.ExitCode = &code
		p.ExitSignal = exitSignal(code)
	}
	p.ExitReason, p.OOMKills = in.oom.view(in.code)
	healthView(in, &p)
	p.Schedule, p.NextRun = schedView(in)
	for i, label := range in.cfg.RedirectOutput {
		if i < 2 && !(in.cfg.TTY && i == 1) {
			p.Streams = append(p.Streams, label)
		}
	}
	p.Streams = append(p.Streams, in.cfg.CustomStreams...)
	return p
}

// isReady: running, and ready when it has a probe.
func (s *supervisor) isReady(in *instance) bool {
	return in.proc != nil && (in.state == stateReady || in.state == stateRunning)
}

// Info implements core.Backend.
func (s *supervisor) Info() core.Info {
	info := core.Info{Pid: os.Getpid(), Mode: "up", StartedAt: s.startedAt, UptimeS: time.Since(s.startedAt).Seconds(), Processes: map[string]int{}}
	info.Reaped, info.ZombiesReaped = s.r.Counts()
	info.OutputDroppedBytes = s.out.Dropped() + s.errOut.Dropped()
	info.NotifyIgnored = s.sd.ignored.Load()
	_ = s.do(func() {
		for _, in := range s.insts {
			info.Processes[in.state.String()]++
			info.Processes["total"]++
		}
		info.Draining = s.draining != nil
	})
	return info
}

// Processes implements core.Backend.
func (s *supervisor) Processes() []core.Process {
	var out []core.Process
	_ = s.do(func() {
		for _, in := range s.insts {
			out = append(out, s.view(in))
		}
	})
	return out
}

// Process implements core.Backend.
func (s *supervisor) Process(name string) (core.Process, map[string]any, error) {
	var p core.Process
	var cfg map[string]any
	err := core.ErrNotFound
	if e := s.do(func() {
		ins := s.find(name)
		if len(ins) == 0 {
			return
		}
		p, cfg, err = s.view(ins[0]), ins[0].cfg.ToDict(), nil
	}); e != nil {
		return p, nil, e
	}
	if err != nil {
		return p, nil, fmt.Errorf("no process %q: %w", name, err)
	}
	return p, cfg, nil
}

// Pids implements core.Backend.
func (s *supervisor) Pids() map[string]int {
	var out map[string]int
	_ = s.do(func() {
		if s.pids == nil {
			s.pids = make(map[string]int, len(s.insts))
			for _, in := range s.insts {
				if in.proc != nil {
					s.pids[in.name] = in.proc.PID()
				}
			}
		}
		out = s.pids
	})
	if out == nil {
		out = map[string]int{}
	}
	return out
}

// setProc gives in its process (nil: none). Every change of a process goes through here, so that
// the map Pids hands out (read-only, for stats) is rebuilt only after one: with a thousand
// processes, building it for every stats request was a quarter of gaffer's cpu under load.
func (s *supervisor) setProc(in *instance, p child) {
	in.proc = p
	s.pids = nil
}

// Signal implements core.Backend.
func (s *supervisor) Signal(name string, sig syscall.Signal, group bool) error {
	err := s.each(name, func(in *instance) error {
		if s.sweep != nil {
			// The sweep reaps without telling the instances: a pid may be gone already.
			return fmt.Errorf("gaffer is exiting: %w", core.ErrUnavailable)
		}
		if in.proc == nil {
			return fmt.Errorf("%s is not running: %w", in.name, core.ErrConflict)
		}
		if group {
			return killErr(in.proc.SignalGroup(sig))
		}
		return killErr(in.proc.Signal(sig))
	})
	return err
}

// one runs f on the loop for the one instance name means (findOne).
func (s *supervisor) one(name string, f func(*instance) error) error {
	var err error
	if e := s.do(func() {
		var in *instance
		if in, err = s.findOne(name); err == nil {
			err = f(in)
		}
	}); e != nil {
		return e
	}
	return err
}

// each runs f on the loop for every instance name means.
func (s *supervisor) each(name string, f func(*instance) error) error {
	var err error
	if e := s.do(func() {
		ins := s.find(name)
		if len(ins) == 0 {
			err = fmt.Errorf("no process %q: %w", name, core.ErrNotFound)
			return
		}
		// For a name that means several instances, one that is already as asked (running for
		// start, stopped for stop) is no conflict while another one was acted on.
		var conflicts error
		acted := false
		for _, in := range ins {
			switch e := f(in); {
			case e == nil:
				acted = true
			case errors.Is(e, core.ErrConflict) && len(ins) > 1:
				conflicts = errors.Join(conflicts, e)
			default:
				err = errors.Join(err, e)
			}
		}
		if !acted {
			err = errors.Join(err, conflicts)
		}
	}); e != nil {
		return e
	}
	return err
}

// Start implements core.Backend: a process that is not running starts now.
func (s *supervisor) Start(ctx context.Context, name string, wait bool) error {
	err := s.each(name, s.startOne)
	if err != nil || !wait {
		return err
	}
	// Without a probe, ready means it stayed up startHold, as with supervisord's startsecs.
	err = s.waitFor(ctx, name, func(in *instance) bool {
		if in.proc == nil {
			return in.state != stateStarting
		}
		return in.state == stateReady || in.state == stateRunning && s.clock.Now().Sub(in.started) >= startHold
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s not ready in time: %w", name, err)
	}
	if err != nil {
		return err
	}
	// It may have ended at once (a bad command, a crash): say so rather than report success.
	_ = s.do(func() {
		for _, in := range s.find(name) {
			if !s.isReady(in) && !(in.cfg.Oneshot && s.satisfiedOne(in)) { // a oneshot may be done already
				err = errors.Join(err, fmt.Errorf("%s did not stay up: it is %s (exit code %d): %w", in.name, in.state, in.code, core.ErrConflict))
			}
		}
	})
	return err
}

// startOne starts in now, on the loop, whatever its state but a running one.
func (s *supervisor) startOne(in *instance) error {
	if s.stopping != nil {
		return fmt.Errorf("gaffer is stopping: %w", core.ErrUnavailable)
	}
	if in.proc != nil || in.state == stateStopping {
		return fmt.Errorf("%s is already running: %w", in.name, core.ErrConflict)
	}
	if in.retire {
		return fmt.Errorf("%s is being removed by a reload: %w", in.name, core.ErrConflict)
	}
	in.hist.delay = in.cfg.Backoff
	s.start(in) // forgets a pending restart of the old run
	return nil
}

// Stop implements core.Backend: the process gets its stop signal and stays stopped (held) until
// started again; neither its restart policy nor on_end applies.
func (s *supervisor) Stop(ctx context.Context, name string, wait bool) error {
	err := s.each(name, s.stopOne)
	if err != nil || !wait {
		return err
	}
	return s.waitFor(ctx, name, func(in *instance) bool { return in.proc == nil })
}

// stopOne stops in and holds it, on the loop.
func (s *supervisor) stopOne(in *instance) error {
	if in.proc == nil {
		if in.state == stateBackoff {
			s.forget(in)
			s.to(in, stateHeld, "", -1, "")
			return nil
		}
		return fmt.Errorf("%s is not running: %w", in.name, core.ErrConflict)
	}
	if in.state == stateStopping {
		return fmt.Errorf("%s is already stopping: %w", in.name, core.ErrConflict)
	}
	s.stopInstance(in, stopHold)
	return nil
}

// Restart implements core.Backend: stop (when running), wait for the exit, start.
func (s *supervisor) Restart(ctx context.Context, name string, wait bool) error {
	if err := s.Stop(ctx, name, true); err != nil && !errors.Is(err, core.ErrConflict) {
		return err
	}
	return s.Start(ctx, name, wait)
}

// waitFor polls the instances of name on the loop until cond holds for all of them.
func (s *supervisor) waitFor(ctx context.Context, name string, cond func(*instance) bool) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		all := true
		if err := s.call(ctx, func() {
			for _, in := range s.find(name) {
				all = all && cond(in)
			}
		}); err != nil {
			return err
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// WriteStdin implements core.Backend. The write happens outside the loop, one request at a time per
// process, so writers never interleave within a request and a full pipe never blocks the loop.
func (s *supervisor) WriteStdin(name string, data []byte) error {
	return s.write(name, "", data)
}

// WriteStream implements core.Backend.
func (s *supervisor) WriteStream(name, label string, data []byte) error {
	return s.write(name, label, data)
}

func (s *supervisor) write(name, label string, data []byte) error {
	var f *os.File
	var mu *sync.Mutex
	err := s.one(name, func(in *instance) error {
		if label == "" {
			if in.io.stdin == nil {
				return fmt.Errorf("%s has no stdin pipe (redirect_input) or is not running: %w", in.name, core.ErrConflict)
			}
			f, mu = in.io.stdin, &in.io.writeMu
			return nil
		}
		for i, l := range in.cfg.CustomStreams {
			if l == label {
				if i >= len(in.io.streams) || in.io.streams[i] == nil {
					return fmt.Errorf("%s is not running: %w", in.name, core.ErrConflict)
				}
				f, mu = in.io.streams[i], &in.io.writeMu
				return nil
			}
		}
		return fmt.Errorf("%s has no stream %q: %w", in.name, label, core.ErrNotFound)
	})
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	// A process that does not read must not hold the request, and the writers queued behind
	// it, for ever.
	_ = f.SetWriteDeadline(time.Now().Add(writeTimeout))
	defer f.SetWriteDeadline(time.Time{})
	if _, err := f.Write(data); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%s did not read its input within %v: %w", name, writeTimeout, core.ErrConflict)
		}
		return fmt.Errorf("write to %s: %v: %w", name, err, core.ErrConflict)
	}
	return nil
}

// startHold is how long a process without a readiness probe must stay up for `start ?wait=1`.
const startHold = time.Second

// writeTimeout bounds one stdin or stream write.
const writeTimeout = 10 * time.Second

// Scale implements core.Backend: more instances start at once, extra ones are stopped and removed.
func (s *supervisor) Scale(ctx context.Context, name string, n int) error {
	if n < 0 || n > config.MaxInstances {
		return fmt.Errorf("numprocesses %d: want 0 to %d: %w", n, config.MaxInstances, core.ErrBadRequest)
	}
	var err error
	if e := s.call(ctx, func() { err = s.scale(name, n) }); e != nil {
		return e
	}
	return err
}

// scale runs on the loop. New instances take the next numbers and start once their process's
// dependencies are satisfied, like the first ones; the highest-numbered ones go first. A process
// scaled to 0 keeps its configuration and can be scaled up again.
func (s *supervisor) scale(name string, n int) error {
	if s.stopping != nil {
		return fmt.Errorf("gaffer is stopping: %w", core.ErrUnavailable)
	}
	var cfg *config.Process
	for i := range s.cfg.Config.Processes {
		if s.cfg.Config.Processes[i].Name == name {
			cfg = &s.cfg.Config.Processes[i]
		}
	}
	if cfg == nil {
		return fmt.Errorf("no process %q: %w", name, core.ErrNotFound)
	}
	if !cfg.Schedule.IsZero() && n > 1 {
		return fmt.Errorf("%s runs on a schedule: one instance at most: %w", name, core.ErrBadRequest)
	}
	var live []*instance
	last, total := -1, 0 // where new instances go: after the group's last, else at the end
	used := map[int]bool{}
	for i, in := range s.insts {
		if in.cfg != cfg {
			if in.state != stateStopping || in.stop != stopRemove {
				total++
			}
			continue
		}
		last = i
		used[in.index] = true
		if in.state != stateStopping || in.stop != stopRemove {
			live = append(live, in)
		}
	}
	if n == len(live) {
		return fmt.Errorf("%s already has %d instances: %w", name, n, core.ErrConflict)
	}
	if total+n > config.MaxTotalInstances {
		return fmt.Errorf("%d instances in all would pass the limit of %d: %w", total+n, config.MaxTotalInstances, core.ErrBadRequest)
	}
	if last < 0 {
		last = len(s.insts) - 1
	}
	// New instances take the lowest numbers not in use: one still being removed keeps its own.
	k := 0
	for range n - len(live) {
		for k++; used[k]; k++ {
		}
		used[k] = true
		in := s.newInstance(cfg, k)
		s.insts = slices.Insert(s.insts, last+1, in)
		last++
		if scheduled(in) {
			s.armSchedule(in, s.clock.Now())
		}
	}
	for _, in := range live[min(n, len(live)):] {
		if in.proc != nil {
			if in.state == stateStopping {
				in.stop = stopRemove // stopping already: removed once it exited
			} else {
				s.stopInstance(in, stopRemove)
			}
			continue
		}
		s.remove(in)
	}
	cfg.NumProcesses = n
	s.setWidth()
	s.startReady()
	return nil
}

// Logs implements core.Backend.
func (s *supervisor) Logs(ctx context.Context, name, stream string, tail int, follow bool) ([]core.LogLine, <-chan core.LogLine, error) {
	var ring *logRing
	err := s.one(name, func(in *instance) error {
		ring = in.logs
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	lines, ch := ring.tail(ctx, stream, tail, follow)
	return lines, ch, nil
}

// Events implements core.Backend.
func (s *supervisor) Events(ctx context.Context) <-chan core.Event {
	return s.bus.subscribe(ctx)
}

// Shutdown implements core.Backend.
func (s *supervisor) Shutdown(drain bool) {
	_ = s.do(func() {
		s.out.Event("shutdown requested over the API")
		s.requestStop(drain)
	})
}

// Health implements core.Backend.
func (s *supervisor) Health(level string, names []string) (core.HealthReport, error) {
	var r core.HealthReport
	var err error
	if e := s.do(func() { r, err = s.health(level, names) }); e != nil {
		return core.HealthReport{}, e
	}
	return r, err
}

// emit publishes an event of in to API followers.
func (s *supervisor) emit(kind string, in *instance, code int, detail string) {
	e := core.Event{Time: s.clock.Now(), Kind: kind, Detail: detail}
	if in != nil {
		e.Name = in.name
		if in.proc != nil {
			e.Pid = in.proc.PID()
		}
	}
	if code >= 0 {
		e.Code = &code
	}
	s.bus.emit(e)
}

// killErr turns the failure to signal a process that just went away into a conflict.
func killErr(err error) error {
	if errors.Is(err, unix.ESRCH) || errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("the process has exited: %w", core.ErrConflict)
	}
	return err
}

// instanceName is the name of instance k of p: p's name alone when it runs one instance.
func instanceName(p *config.Process, k int) string {
	if p.NumProcesses > 1 || k > 1 {
		return p.Name + "." + strconv.Itoa(k)
	}
	return p.Name
}

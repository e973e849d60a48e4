package pid1

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"gaffer/config"
	"gaffer/core"
	"gaffer/reaper"
	"gaffer/relay"
	"gaffer/signals"

	"golang.org/x/sys/unix"
)

// UpConfig is one `gaffer up` run.
type UpConfig struct {
	Config *config.Config
	// Signals carries every signal gaffer receives (see Config.Signals); NotifyLate completes it.
	Signals <-chan os.Signal
	// Serve, when set, starts the API socket with the supervisor as its backend; the function it
	// returns stops it.
	Serve func(core.Backend) func()
	// LogBytes is how much recent output of each process is kept for the API (default 256 KiB).
	LogBytes   int
	NotifyLate func()
	Stdout     io.Writer // where the processes' stdout lines and gaffer's events go
	Stderr     io.Writer // where their stderr lines go
	Color      bool
	Debugf     Logf
	Warnf      Logf
	// Clock is the time of backoffs, probes and timeouts; nil is the system's.
	Clock Clock
	// Reload, when set, reads the configuration's sources again (gaffer reload, reload_signal).
	Reload func() (*config.Config, error)
	// ColorOn says whether a color setting (auto, always, never) paints gaffer's output, for a
	// reload that changes it; nil keeps Color.
	ColorOn func(setting string) bool
	// SocketAccess, when set, applies a reload's socket_mode, socket_group and socket_allow_uids
	// to the API socket while it serves. It is called off the loop.
	SocketAccess func(next config.Settings) error
}

// drainWait bounds how long output is read after a process exited: a grandchild may hold its pipes.
const drainWait = 2 * time.Second

// startBatch is how many processes the loop starts before it looks at signals, exits and API
// calls again: a thousand forks in one pass would leave them waiting for seconds.
const startBatch = 32

// Readiness probes are tried at these intervals, doubling, until one succeeds.
const (
	probeFirst = 50 * time.Millisecond
	probeMax   = time.Second
)

// instance is one running copy of a configured process (web, or web.1, web.2 ...). Only the
// loop touches it, but io.writeMu and logs, which API writers use outside the loop.
type instance struct {
	cfg   *config.Process
	name  string
	index int // 1-based instance number
	level int // dependency depth: started after every lower level, stopped before them
	color int

	state state
	since time.Time  // when it entered state
	stop  stopReason // in stateStopping: why, which decides what its exit leads to
	// killed: in stateStopping, its stop timeout ran out and it got SIGKILL.
	killed bool
	// lost: during the shutdown, still not gone finalWait after SIGKILL; the levels below no
	// longer wait for it.
	lost bool

	proc child // its process; nil when none runs
	// gen counts the instance's runs and the times its pending timers and probes were
	// forgotten: an event that carries an older gen is stale and dropped.
	gen      int
	timers   []Timer // pending timers of this gen
	started  time.Time
	restarts int
	hist     history
	code     int // the last exit code, -1 before the first

	// Readiness, while starting.
	probe       child              // an exec probe running
	probeCancel context.CancelFunc // a network or file probe under way
	probeDelay  time.Duration      // before the next try
	probeErr    error              // the last failure
	logReady    *logWatch          // ready = "log:...": watching this run's output

	// A reload (reload.go): retire, it is being removed; reconfigured, it ended and takes its
	// new configuration by going back to pending.
	retire       bool
	reconfigured bool

	io   ioState
	logs *logRing

	health healthState // liveness checks (health.go)
	sched  schedState  // scheduled runs (schedule.go)
	notify notifyState // the systemd protocols (notify.go)
	oom    oomState    // how its runs ended, OOM kills in its tree (oom.go)
}

type eventKind int

const (
	evRestart eventKind = iota
	evProbe
	evProbeResult
	evReadyTimeout
	evStopTimeout
	evKillTimeout
	evHealth        // time for a liveness check (health.go)
	evHealthResult  // a network or file check's result
	evHealthTimeout // an exec check ran out of health_timeout
	evSchedule      // a scheduled run is due (schedule.go)
	evDrainEnd      // the drain is over (drain.go)
)

// event is a timer or probe result for the loop.
type event struct {
	kind eventKind
	inst *instance
	gen  int
	seq  int // of the health check (evHealth*) or the schedule (evSchedule)
	err  error
}

// shutdownState is the ordered stop under way.
type shutdownState struct {
	level        int  // the level being stopped
	code         int  // the exit code the shutdown began with
	unclean      bool // a process did not stop cleanly on its stop signal
	firstUnclean int  // the exit code of the first that did not
}

// supervisor is the loop of `gaffer up`: one goroutine owns every instance.
type supervisor struct {
	cfg    UpConfig
	clock  Clock
	launch launcher
	r      *reaper.Reaper // nil in tests that start nothing
	isInit bool
	insts  []*instance // in file order
	levels map[string]int
	out    *relay.Writer
	errOut *relay.Writer
	events chan event
	debugf Logf
	warnf  Logf

	stopping  *shutdownState // the ordered shutdown, once begun
	failure   int            // code of the last failure, 0 if none
	sweep     *sweep         // after the last level: the leftovers' stop
	draining  *drainState    // settings.drain under way (drain.go)
	drainSeq  int
	reloadSem chan struct{}                      // one reload at a time, from reading the files to applying them
	strays    []child                            // probe children no longer wanted, still to be collected
	starting  bool                               // pending instances may be startable: startSome has work
	ready     chan struct{}                      // closed at once: always ready in a select
	trace     func(in *instance, from, to state) // every transition, for tests
	pids      map[string]int                     // Pids' answer, until a process changes (setProc); never modified

	relays sync.WaitGroup // output being copied; waited for before gaffer exits

	loopCalls // API work, run on the loop; exited is closed when Up returns
	startedAt time.Time
	bus       eventBus
	sd        systemd // the systemd protocols: notify socket, listening sockets (notify.go)

	res resources // the container's cgroup: OOM kills named, per-process limits (oom.go)
}

// newSupervisor builds the supervisor of cfg with its instances; nothing is started.
func newSupervisor(cfg UpConfig, r *reaper.Reaper, launch func(*supervisor) launcher) (*supervisor, error) {
	settings := cfg.Config.Settings
	format, err := relay.ParseFormat(settings.Output)
	if err != nil {
		return nil, err
	}
	clock := orSystem(cfg.Clock)
	s := &supervisor{
		cfg: cfg, clock: clock, r: r, events: make(chan event, 1024),
		debugf: orSilent(cfg.Debugf), warnf: orSilent(cfg.Warnf),
		loopCalls: newLoopCalls(), startedAt: clock.Now(), ready: make(chan struct{}), reloadSem: make(chan struct{}, 1),
	}
	close(s.ready)
	opts := relay.Options{Format: format, Timestamps: settings.Timestamps, Color: cfg.Color}
	stdout, stderr := cfg.Stdout, cfg.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	s.out = relay.NewWriter(stdout, opts)
	s.errOut = relay.NewWriter(stderr, opts)
	s.launch = launch(s)
	s.build()
	return s, nil
}

// Up runs every configured process, supervises them by their policies, relays their output and,
// when it is time, stops them in reverse dependency order. It returns gaffer's exit code.
// Process-wide settings (working directory, subreaper bit, signal notification) are the
// caller's.
func Up(ctx context.Context, cfg UpConfig) (int, error) {
	r := reaper.New()
	s, err := newSupervisor(cfg, r, func(s *supervisor) launcher {
		return &osLauncher{r: r, out: s.out, errOut: s.errOut, relays: &s.relays, warnf: s.warnf, sd: &s.sd, res: &s.res}
	})
	if err != nil {
		return 2, err
	}
	// Socket activation: every listen address is bound before anything starts (a failure is a
	// usage error); the sockets and the notify socket close once every process is gone.
	if err := s.sd.open(s); err != nil {
		return 2, err
	}
	defer s.sd.close()
	s.initResources() // OOM kills named, per-process cgroups (oom.go); removed once all is gone
	defer s.res.close()
	s.isInit = reaper.IsPID1()
	if _, _, err := r.Reap(); err != nil {
		s.warnf("%v", err)
	}
	s.startReady()
	allSignals := notifyLate(cfg.NotifyLate)
	if cfg.Serve != nil {
		defer cfg.Serve(s)()
	}
	// Deferred after the API's stop so that it runs first: API calls waiting on the loop fail
	// at once instead of keeping the server's Close waiting.
	defer close(s.exited)
	s.checkDone()
	ctxDone := ctx.Done()
	for s.sweep == nil {
		select {
		case f := <-s.calls:
			f()
		case <-allSignals:
			allSignals = nil
			s.debugf("forwarding all signals")
		case sig := <-cfg.Signals:
			s.onSignal(sig.(syscall.Signal))
		case ev := <-s.events:
			s.onEvent(ev)
		case <-s.more():
			s.startSome()
		case <-ctxDone:
			ctxDone = nil
			s.shutdown(0, "stop requested")
		}
	}
	// Every supervised process is gone: what is left is the sweep's job.
	return s.finish(ctx), nil
}

// more is ready while pending instances may be startable, so that the loop serves other work
// between batches of starts; nil (never ready) otherwise.
func (s *supervisor) more() <-chan struct{} {
	if !s.starting {
		return nil
	}
	return s.ready
}

// build makes the instances of every configured process, in file order, with their levels.
func (s *supervisor) build() {
	procs := s.cfg.Config.Processes
	s.levels = levels(procs)
	for i := range procs {
		p := &procs[i]
		for k := 1; k <= max(p.NumProcesses, 1); k++ {
			s.insts = append(s.insts, s.newInstance(p, k))
		}
	}
	s.setWidth()
	s.initSchedules()
}

// levels gives each process its dependency depth: 0 without `after`, else one more than the
// deepest of its dependencies. A cycle (refused by config) cannot recurse for ever.
func levels(procs []config.Process) map[string]int {
	out := map[string]int{}
	byName := map[string]*config.Process{}
	for i := range procs {
		byName[procs[i].Name] = &procs[i]
	}
	var level func(name string, depth int) int
	level = func(name string, depth int) int {
		if l, ok := out[name]; ok {
			return l
		}
		l := 0
		if p := byName[name]; p != nil && depth < len(procs) {
			for _, dep := range p.After {
				l = max(l, level(dep, depth+1)+1)
			}
		}
		out[name] = l
		return l
	}
	for _, p := range procs {
		level(p.Name, 0)
	}
	return out
}

func (s *supervisor) newInstance(p *config.Process, k int) *instance {
	name := instanceName(p, k)
	size := s.cfg.LogBytes
	if size <= 0 {
		size = 256 << 10
	}
	return &instance{
		cfg: p, name: name, index: k, level: s.levels[p.Name], color: len(s.insts),
		state: statePending, since: s.clock.Now(), code: -1, hist: history{delay: p.Backoff},
		logs: newLogRing(name, size),
	}
}

// setWidth pads names to the longest instance (or instance:stream) name.
func (s *supervisor) setWidth() {
	width := 0
	for _, in := range s.insts {
		width = max(width, len(in.name))
		for _, label := range in.cfg.CustomStreams {
			width = max(width, len(in.name)+1+len(label))
		}
	}
	s.out.SetNameWidth(width)
	s.errOut.SetNameWidth(width)
}

// satisfied reports whether every instance of process name is far enough for its dependents:
// a oneshot has succeeded, anything else is ready (or running, without a probe).
func (s *supervisor) satisfied(name string) bool {
	for _, in := range s.insts {
		if in.cfg.Name != name {
			continue
		}
		if in.cfg.Oneshot {
			if in.state != stateExited || !slices.Contains(in.cfg.SuccessCodes, in.code) {
				return false
			}
			continue
		}
		if in.state != stateReady && in.state != stateRunning {
			return false
		}
	}
	return true
}

// blockedBy names a dependency of in that can never become satisfied.
func (s *supervisor) blockedBy(in *instance) (string, bool) {
	for _, dep := range in.cfg.After {
		for _, d := range s.insts {
			if d.cfg.Name != dep {
				continue
			}
			failedOneshot := d.state == stateExited && !(d.cfg.Oneshot && slices.Contains(d.cfg.SuccessCodes, d.code))
			if d.state == stateFatal || failedOneshot {
				return dep, true
			}
		}
	}
	return "", false
}

func (s *supervisor) blocked(in *instance) bool {
	_, ok := s.blockedBy(in)
	return ok
}

// startReady marks the pending instances that can never start, and asks the loop to start, in
// batches, every one whose dependencies are satisfied.
func (s *supervisor) startReady() {
	if s.stopping != nil {
		return
	}
	for _, in := range s.insts {
		if in.state != statePending {
			continue
		}
		if dep, ok := s.blockedBy(in); ok {
			s.to(in, stateFatal, "", -1, "")
			s.out.Event("%s will not start: %s ended", in.name, dep)
			continue
		}
		s.starting = true
	}
}

// startSome starts up to startBatch pending instances whose dependencies are satisfied, in file
// order, and marks those that can never start. It clears starting once a pass found nothing left.
func (s *supervisor) startSome() {
	if s.stopping != nil {
		s.starting = false
		return
	}
	n := 0
	for _, in := range slices.Clone(s.insts) {
		if in.state != statePending || (scheduled(in) && !in.sched.due) || in.retire {
			continue
		}
		if s.blocked(in) {
			s.startReady() // marks it, and what else it blocks
			s.checkDone()
			continue
		}
		ready := true
		for _, dep := range in.cfg.After {
			if !s.satisfied(dep) {
				ready = false
				break
			}
		}
		if !ready {
			continue
		}
		if n == startBatch {
			return // more next time round
		}
		n++
		s.start(in)
		if s.stopping != nil {
			break
		}
	}
	// A start in this pass may satisfy a process earlier in the file (listed before what it
	// depends on): one more pass, which ends it when nothing more starts.
	s.starting = n > 0 && s.stopping == nil
}

// start spawns in and starts its readiness probe.
func (s *supervisor) start(in *instance) {
	s.forget(in)
	in.sched.due = false // a scheduled run is due once; the next waits for its time
	in.started = s.clock.Now()
	in.killed, in.stop, in.probeErr = false, stopNone, nil
	if in.cfg.Ready.Kind == config.ProbeLog {
		s.watchOutput(in)
	}
	p, err := s.launch.start(in)
	if err != nil {
		s.out.Event("%s cannot start: %v", in.name, err)
		s.exit(in, startCode(err))
		return
	}
	s.setProc(in, p)
	s.out.Event("%s started (pid %d)", in.name, p.PID())
	if in.cfg.Ready.Kind == config.ProbeNone || in.cfg.Ready.Kind == "" {
		s.to(in, stateRunning, "spawn", -1, "")
		s.startReady()
		return
	}
	s.to(in, stateStarting, "spawn", -1, "")
	if in.cfg.ReadyTimeout > 0 {
		s.after(in, in.cfg.ReadyTimeout, evReadyTimeout)
	}
	in.probeDelay = probeFirst
	s.probe(in)
}

// after arms a timer of in's current gen that hands kind to the loop after d.
func (s *supervisor) after(in *instance, d time.Duration, kind eventKind) {
	ev := event{kind: kind, inst: in, gen: in.gen}
	in.timers = append(in.timers, s.clock.AfterFunc(d, func() { s.post(ev) }))
}

// post hands ev to the loop from a timer or a probe's goroutine; once the loop is gone, it is
// dropped rather than left waiting for ever.
func (s *supervisor) post(ev event) {
	select {
	case s.events <- ev:
	case <-s.exited:
	}
}

// forget makes every pending timer and probe of in stale: stopped where it can be, ignored
// where it already fired.
func (s *supervisor) forget(in *instance) {
	in.gen++
	for _, t := range in.timers {
		t.Stop()
	}
	in.timers = nil
	if in.probeCancel != nil {
		in.probeCancel()
		in.probeCancel = nil
	}
	if in.probe != nil {
		s.abandon(in.probe)
		in.probe = nil
	}
	s.forgetHealth(in)
	if in.logReady != nil {
		in.logReady.stop()
		in.logReady = nil
	}
}

// abandon kills an exec probe or check no longer wanted, the group of its shell and what it
// started, and keeps it among the strays, to be collected when it exits.
func (s *supervisor) abandon(p child) {
	_ = p.SignalGroup(unix.SIGKILL)
	s.strays = append(s.strays, p)
}

// probe tries in's readiness once: an exec probe is started here, on the loop, like every child;
// the others run on a goroutine of their own. The result comes back as evProbeResult.
func (s *supervisor) probe(in *instance) {
	if in.cfg.Ready.Kind == config.ProbeNotify || in.cfg.Ready.Kind == config.ProbeLog {
		return // READY=1 on the notify socket (notify.go), or a line of output (logready.go)
	}
	if in.cfg.Ready.Kind == config.ProbeExec {
		p, err := s.launch.startProbe(in, in.cfg.Ready.Target)
		if err != nil {
			s.onProbeResult(in, err)
			return
		}
		in.probe = p
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.probeCancel = cancel
	s.checkOff(ctx, 0, in.cfg.Ready, event{kind: evProbeResult, inst: in, gen: in.gen}, "readiness probe of "+in.name)
}

// checkOff runs a probe that starts no process (tcp, http(s), file) once, on a goroutine of its
// own, and hands the result to the loop as ev. With a timeout, ctx's deadline, running out of it
// is the failure "no answer within" timeout.
func (s *supervisor) checkOff(ctx context.Context, timeout time.Duration, p config.Probe, ev event, what string) {
	go func() {
		defer survive(s.warnf, what)
		err := s.launch.check(ctx, p)
		if err != nil && timeout > 0 && ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no answer within %v", timeout)
		}
		ev.err = err
		s.post(ev)
	}()
}

// onProbeResult makes in ready, or tries again later.
func (s *supervisor) onProbeResult(in *instance, err error) {
	if in.state != stateStarting {
		return
	}
	if err == nil {
		s.forget(in) // the ready timeout
		s.to(in, stateReady, "ready", -1, "")
		s.out.Event("%s ready", in.name)
		s.startReady()
		return
	}
	in.probeErr = err
	s.after(in, in.probeDelay, evProbe)
	in.probeDelay = min(in.probeDelay*2, probeMax)
}

func (s *supervisor) onEvent(ev event) {
	in := ev.inst
	switch {
	case ev.kind == evDrainEnd:
		s.onDrainEnd(ev)
		return
	case ev.kind == evSchedule:
		s.onScheduled(ev) // its own sequence: a run's forget does not cancel the schedule
		return
	}
	if ev.gen != in.gen || in.state == stateRemoved {
		return // stale: of an earlier run, or of an instance scaled away
	}
	switch ev.kind {
	case evRestart:
		if in.state == stateBackoff && s.stopping == nil && !in.retire {
			s.start(in)
		}
	case evProbe:
		if in.state == stateStarting {
			s.probe(in)
		}
	case evProbeResult:
		in.probeCancel = nil
		s.onProbeResult(in, ev.err)
	case evReadyTimeout:
		if s.readyExtended(in) {
			break // EXTEND_TIMEOUT_USEC moved it (notify.go)
		}
		if in.state == stateStarting && in.proc != nil {
			why := "no answer yet"
			if in.cfg.Ready.Kind == config.ProbeLog {
				why = "no line matched " + in.cfg.Ready.Target
			}
			if in.probeErr != nil {
				why = in.probeErr.Error()
			}
			s.out.Event("%s not ready after %v (%s): stopping it", in.name, in.cfg.ReadyTimeout, why)
			s.stopInstance(in, stopUnready)
		}
	case evStopTimeout:
		if in.state == stateStopping && in.proc != nil {
			s.out.Event("%s still running %v after SIG%s: sending SIGKILL", in.name, in.cfg.StopTimeout, signals.Name(in.cfg.StopSignal))
			in.killed = true
			_ = in.proc.SignalGroup(unix.SIGKILL)
			s.after(in, finalWait, evKillTimeout)
		}
	case evKillTimeout:
		// Not gone finalWait after SIGKILL: stuck in the kernel (D state). The shutdown must not
		// wait for it for ever; the sweep's own bound covers the end.
		if in.state == stateStopping && in.proc != nil && s.stopping != nil && !in.lost {
			s.warnf("%s still not gone %v after SIGKILL: stopping the rest without it", in.name, finalWait)
			in.lost = true
			s.advance()
		}
	case evHealth, evHealthResult, evHealthTimeout:
		s.onHealthEvent(ev)
	default:
		s.onNotifyEvent(ev) // the watchdog (notify.go)
	}
}

// stopInstance sends in's stop signal to its process group and arms its stop timeout; why says
// what its exit will lead to.
func (s *supervisor) stopInstance(in *instance, why stopReason) {
	if in.proc == nil || in.state == stateStopping {
		return
	}
	s.forget(in)
	in.stop = why
	s.to(in, stateStopping, "", -1, "")
	if err := in.proc.SignalGroup(in.cfg.StopSignal); err != nil && !errorsIsESRCH(err) {
		s.warnf("stop %s: %v", in.name, err)
	}
	s.after(in, in.cfg.StopTimeout, evStopTimeout)
}

func (s *supervisor) onSignal(sig syscall.Signal) {
	if rs := s.cfg.Config.Settings.ReloadSignal; rs != 0 && sig == rs && s.stopping == nil {
		s.out.Event("received SIG%s: reloading the configuration", signals.Name(sig))
		s.reloadOnSignal()
		return
	}
	switch classify(sig) {
	case sigReap:
		s.reap()
	case sigIgnore:
		s.debugf("received SIG%s: not forwarded", signals.Name(sig))
	case sigStop:
		if s.stopping != nil {
			s.out.Event("received SIG%s again: killing everything", signals.Name(sig))
			for _, in := range s.insts {
				if in.proc != nil && !in.cfg.Detach {
					in.killed = true
					_ = in.proc.SignalGroup(unix.SIGKILL)
				}
			}
			return
		}
		if s.draining != nil {
			s.out.Event("received SIG%s again", signals.Name(sig))
			s.requestStop(false)
			return
		}
		if s.cfg.Config.Settings.Drain > 0 && (sig == unix.SIGTERM || sig == unix.SIGINT) {
			s.out.Event("received SIG%s", signals.Name(sig))
			s.requestStop(true)
			return
		}
		s.out.Event("received SIG%s: stopping", signals.Name(sig))
		s.shutdown(0, "")
	default:
		for _, in := range s.insts {
			if in.proc != nil {
				_ = in.proc.Signal(sig)
			}
		}
		s.debugf("forwarded SIG%s to every running process", signals.Name(sig))
	}
}

// reap collects exits and hands each to its instance.
func (s *supervisor) reap() {
	if s.r != nil {
		orphans, _, err := s.r.Reap()
		if err != nil {
			s.warnf("%v", err)
		}
		orphans = s.claimOrphans(orphans) // the exit of a MAINPID is its instance's (notify.go)
		s.res.reaped(orphans)             // an OOM victim reparented to gaffer (oom.go)
		if len(orphans) > 0 {
			s.debugf("reaped %d orphans", len(orphans))
			s.emit("reap", nil, -1, fmt.Sprintf("%d orphans", len(orphans)))
		}
	}
	s.collect()
}

// collect takes the exits that arrived for the instances' processes and probes.
func (s *supervisor) collect() {
	s.collectNotify() // processes a MAINPID took the place of (notify.go)
	s.strays = slices.DeleteFunc(s.strays, func(p child) bool {
		select {
		case <-p.Exit():
			p.Release()
			return true
		default:
			return false
		}
	})
	for _, in := range slices.Clone(s.insts) {
		// The process's exit first: a probe's verdict must never act on a process already reaped
		// (its exit forgets the probes of its run).
		if in.proc != nil {
			select {
			case e := <-in.proc.Exit():
				s.exitReason(in, e) // exit, signal or oom, said before the exit line (oom.go)
				s.emit("exit", in, e.Code(), "")
				in.proc.Release()
				s.setProc(in, nil)
				s.launch.ended(in)
				s.exit(in, e.Code())
			default:
			}
		}
		s.collectHealth(in)
		if in.probe != nil {
			select {
			case e := <-in.probe.Exit():
				in.probe.Release()
				in.probe = nil
				var err error
				if c := e.Code(); c != 0 {
					err = fmt.Errorf("exit %d", c)
				}
				s.onProbeResult(in, err)
			default:
			}
		}
	}
}

// exit carries out what follows the end of in's process (or a start that failed): restart, give
// up, shut everything down, remove it, or nothing.
func (s *supervisor) exit(in *instance, code int) {
	in.code = code
	stop, killed := in.stop, in.killed
	if in.retire {
		// A reload removes it: whatever ended it, it is not restarted (reload.go).
		stop = stopRemove
		if in.state != stateStopping {
			s.to(in, stateExited, "", -1, "") // it ended by itself before its turn to stop
		}
	}
	s.forget(in)
	in.stop, in.killed = stopNone, false
	s.out.Event("%s exited with code %d%s", in.name, code, describeCode(code))
	if stop == stopReload && s.stopping == nil {
		in.hist.delay = in.cfg.Backoff
		if scheduled(in) {
			in.sched.due = true // the run the reload cut short starts again, not at the next time
		}
		s.to(in, statePending, "", -1, "")
		s.startReady()
		return
	}
	facts := exitFacts{code: code, stop: stop, killed: killed, stopping: s.stopping != nil}
	d := decideExit(in.cfg, history{started: in.started, delay: in.hist.delay, recent: in.hist.recent}, facts, s.clock.Now())
	switch d.next {
	case stateRemoved:
		s.remove(in)
		if s.stopping != nil {
			s.advance()
		} else {
			s.retireSome() // a reload's removals, dependents first (reload.go)
			s.startReady() // what waited for the instances of a process scaled down may start
			s.checkDone()
		}
		return
	case stateExited:
		if s.stopping != nil {
			s.to(in, stateExited, "", -1, "")
			if d.unclean && !s.stopping.unclean {
				s.stopping.unclean, s.stopping.firstUnclean = true, code
			}
			s.advance()
			return
		}
	case stateBackoff:
		in.hist = d.hist
		in.restarts++
		s.to(in, stateBackoff, "restart", code, d.delay.String())
		s.out.Event("%s restarting in %v", in.name, d.delay)
		s.after(in, d.delay, evRestart)
		return
	}
	in.hist = d.hist
	if d.gaveUp {
		s.out.Event("%s gave up: %d restarts within %v", in.name, len(d.hist.recent), in.cfg.RestartWindow)
		s.to(in, d.next, "gave-up", code, "")
	} else {
		s.to(in, d.next, "", -1, "")
	}
	if d.next == stateFatal {
		s.failure = code
	}
	if d.shutdown {
		s.shutdown(code, in.name+" ended")
		return
	}
	s.startReady()
	s.checkDone()
}

// remove takes in out of the table for good.
func (s *supervisor) remove(in *instance) {
	s.forget(in)
	s.stopSchedule(in)
	s.to(in, stateRemoved, "", -1, "")
	in.logs.close()
	s.insts = slices.DeleteFunc(s.insts, func(x *instance) bool { return x == in })
	s.setWidth()
	s.out.Event("%s removed", in.name)
}

// checkDone shuts down when nothing runs and nothing will: exit with the last failure, or 0.
func (s *supervisor) checkDone() {
	if s.stopping == nil && nothingLeft(s.insts, s.blocked) {
		s.shutdown(s.failure, "nothing left to run")
	}
}

// shutdown starts the ordered stop of every process: highest level first, each level all at once,
// the next when the previous is gone.
func (s *supervisor) shutdown(code int, why string) {
	if s.stopping != nil {
		return
	}
	s.stopping = &shutdownState{code: code}
	s.starting = false
	s.endDrain()
	if why != "" {
		s.out.Event("stopping: %s", why)
	}
	s.emit("shutdown", nil, -1, why)
	for _, in := range s.insts {
		s.stopSchedule(in)
		s.stopping.level = max(s.stopping.level, in.level)
		if in.proc == nil {
			s.forget(in) // a restart or probe timer
			if in.state == statePending || in.state == stateBackoff {
				s.to(in, stateExited, "", -1, "")
			}
		}
	}
	s.advance()
}

// advance stops the current level, or moves to the next one when it is gone; after the last, what
// is left over goes to the sweep.
func (s *supervisor) advance() {
	st := s.stopping
	for ; st.level >= 0; st.level-- {
		alive := false
		for _, in := range s.insts {
			if in.level != st.level || in.proc == nil || in.cfg.Detach || in.lost {
				continue
			}
			alive = true
			s.stopInstance(in, stopShutdown)
		}
		if alive {
			return
		}
	}
	s.sweep = newSweep(sweepConfig{
		r: s.r, isInit: s.isInit, grace: s.cfg.Config.Settings.Grace, clock: s.clock,
		skip: s.detached, debugf: s.debugf, warnf: s.warnf,
	})
}

// code is the exit code of the shutdown.
func (s *supervisor) code() int {
	st := s.stopping
	if st == nil {
		return s.failure
	}
	return shutdownCode(st.code, st.firstUnclean, st.unclean)
}

// detached lists the pids of detached processes still running, which the sweep leaves alone.
func (s *supervisor) detached() []int {
	var out []int
	for _, in := range s.insts {
		if in.cfg.Detach && in.proc != nil {
			out = append(out, in.proc.PID())
		}
	}
	return out
}

// finish stops whatever the processes left behind, as `gaffer --` does after its child, waits
// for their output, and returns the exit code.
func (s *supervisor) finish(ctx context.Context) int {
	s.sweep.run(ctx, s.cfg.Signals, s.calls)
	// Everything a process wrote before it exited reaches gaffer's output; the drain of each
	// stream is bounded since its process exited, and detached ones still running get as long.
	for _, in := range s.insts {
		s.launch.ended(in)
	}
	s.awaitOutput()
	if n := s.out.Dropped() + s.errOut.Dropped(); n > 0 {
		s.warnf("%d bytes of output dropped: gaffer's stdout or stderr did not take them", n)
	}
	return s.code()
}

// outputStall is how long gaffer waits at exit for a stdout or stderr that takes nothing: a pipe
// nobody reads must not keep the container alive (DESIGN rule 10).
const outputStall = time.Second

// awaitOutput waits until the relays have written what the processes left and the events are
// out, while still reaping and answering the API. A destination that makes no progress for
// outputStall, or a further stop signal, ends the wait: what is left is dropped and counted.
func (s *supervisor) awaitOutput() {
	relays := make(chan struct{})
	go func() {
		s.relays.Wait()
		close(relays)
	}()
	tick := time.NewTicker(outputStall / 10)
	defer tick.Stop()
	since := time.Now()
	for {
		select {
		case <-relays:
			relays = nil
		case f := <-s.calls:
			f()
		case sig := <-s.cfg.Signals:
			switch classify(sig.(syscall.Signal)) {
			case sigReap:
				if s.r != nil {
					if _, _, err := s.r.Reap(); err != nil {
						s.warnf("%v", err)
					}
				}
			case sigStop:
				// Impatient: what has not been written by now is given up.
				s.out.Abandon()
				s.errOut.Abandon()
				return
			}
		case <-tick.C:
		}
		outBusy, outLast := s.out.Busy()
		errBusy, errLast := s.errOut.Busy()
		if relays == nil && !outBusy && !errBusy {
			return
		}
		if (outBusy || errBusy) && time.Since(latest(since, outLast, errLast)) >= outputStall {
			s.out.Abandon()
			s.errOut.Abandon()
			return
		}
	}
}

// latest returns the latest of ts.
func latest(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// describeCode explains an exit code that stands for a signal.
func describeCode(code int) string {
	if sig := exitSignal(code); sig != "" {
		return " (SIG" + sig + ")"
	}
	return ""
}

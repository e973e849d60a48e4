package pid1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gaffer/api"
	"gaffer/config"
	"gaffer/reaper"
	"gaffer/relay"
	"gaffer/signals"
	"gaffer/spawn"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// UpConfig is one `gaffer up` run.
type UpConfig struct {
	Config *config.Config
	// Signals carries every signal gaffer receives (see Config.Signals); NotifyLate completes it.
	Signals <-chan os.Signal
	// Serve, when set, starts the API socket with the supervisor as its backend; the function it
	// returns stops it.
	Serve func(api.Backend) func()
	// LogBytes is how much recent output of each process is kept for the API (default 256 KiB).
	LogBytes   int
	NotifyLate func()
	Stdout     io.Writer // where the processes' stdout lines and gaffer's events go
	Stderr     io.Writer // where their stderr lines go
	Color      bool
	Debugf     Logf
	Warnf      Logf
}

// Process states, as the API reports them.
const (
	statePending  = "pending"  // waiting for its dependencies
	stateStarting = "starting" // started, readiness not yet seen
	stateRunning  = "running"  // started, no readiness probe
	stateReady    = "ready"    // started and its probe succeeded
	stateStopping = "stopping" // sent its stop signal
	stateExited   = "exited"   // ended for good, or a oneshot that succeeded
	stateBackoff  = "backoff"  // waiting to restart
	stateFatal    = "fatal"    // gave up, failed, or can never start
)

// drainWait bounds how long output is read after a process exited: a grandchild may hold its pipes.
const drainWait = 2 * time.Second

// instance is one running copy of a configured process (web, or web.1, web.2 ...).
type instance struct {
	cfg      *config.Process
	name     string
	index    int // 1-based instance number
	level    int // dependency depth: started after every lower level, stopped before them
	color    int
	state    string
	proc     *spawn.Process // nil when not running
	gen      int            // increments at every start; stale timer and probe events carry an old one
	started  time.Time
	restarts int
	recent   []time.Time // restarts within restart_window
	delay    time.Duration
	code     int  // the last exit code, -1 before the first exit
	stopping bool // gaffer asked it to stop (shutdown or readiness timeout)
	killed   bool // stop timeout ran out and it got SIGKILL
	cancel   context.CancelFunc
	stdin    *os.File // gaffer's end of its stdin pipe (redirect_input)
	// stdinShared: stdin is the pty master, which its relay owns and closes.
	stdinShared bool
	streams     []*os.File // gaffer's ends of custom streams
	readers     []output   // streams being relayed, for bounding the drain
	held        bool       // stopped over the API: no restart, no on_end, until started again
	removing    bool       // scaled away: removed once it exited
	writeMu     sync.Mutex // one stdin or stream write at a time
	logs        *logRing
}

// output is one stream of a process that gaffer relays: stdout ("out"), stderr ("err"), or a
// custom stream (its label, custom set).
type output struct {
	f      *os.File
	stream string
	custom bool
}

type eventKind int

const (
	evRestart eventKind = iota
	evReady
	evReadyTimeout
	evStopTimeout
)

type event struct {
	kind eventKind
	inst *instance
	gen  int
	err  error
}

// supervisor is the loop of `gaffer up`: one goroutine owns every instance.
type supervisor struct {
	cfg      UpConfig
	r        *reaper.Reaper
	isInit   bool
	insts    []*instance // in file order
	out      *relay.Writer
	errOut   *relay.Writer
	events   chan event
	debugf   Logf
	warnf    Logf
	stopping bool // ordered shutdown under way
	level    int  // the level being stopped
	code     int  // exit code once stopping
	failure  int  // code of the last failure, 0 if none
	unclean  bool // a process did not stop cleanly on its stop signal
	rest     *loop
	levels   map[string]int // dependency depth of each configured process
	relays   sync.WaitGroup // output being copied; waited for before gaffer exits

	loopCalls // API work, run on the loop; exited is closed when Up returns
	startedAt time.Time
	bus       eventBus
}

// Up runs every configured process, supervises them by their policies, relays their output and,
// when it is time, stops them in reverse dependency order. It returns gaffer's exit code.
func Up(ctx context.Context, cfg UpConfig) (int, error) {
	debugf, warnf := orSilent(cfg.Debugf), orSilent(cfg.Warnf)
	s := &supervisor{
		cfg: cfg, r: reaper.New(), isInit: reaper.IsPID1(), events: make(chan event, 1024), debugf: debugf, warnf: warnf,
		loopCalls: newLoopCalls(), startedAt: time.Now(),
	}
	if !s.isInit {
		if err := reaper.SetSubreaper(); err != nil {
			warnf("not PID 1 and %v: orphans will not be reaped by gaffer", err)
		}
	}
	if _, _, err := s.r.Reap(); err != nil {
		warnf("%v", err)
	}
	settings := cfg.Config.Settings
	format, err := relay.ParseFormat(settings.Output)
	if err != nil {
		return 2, err
	}
	opts := relay.Options{Format: format, Timestamps: settings.Timestamps, Color: cfg.Color}
	s.out = relay.NewWriter(cfg.Stdout, opts)
	s.errOut = relay.NewWriter(cfg.Stderr, opts)
	s.build()
	if err := os.Chdir("/"); err != nil {
		debugf("chdir /: %v", err)
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
	for {
		if s.rest != nil {
			// Every supervised process is gone: what is left is the run loop's job.
			return s.finish(ctx), nil
		}
		select {
		case f := <-s.calls:
			f()
		case <-allSignals:
			allSignals = nil
			debugf("forwarding all signals")
		case sig := <-cfg.Signals:
			s.onSignal(sig.(syscall.Signal))
		case ev := <-s.events:
			s.onEvent(ev)
		case <-ctxDone:
			ctxDone = nil
			s.shutdown(0, "stop requested")
		}
	}
}

// build makes the instances of every configured process, in file order, with their levels.
func (s *supervisor) build() {
	procs := s.cfg.Config.Processes
	levels := map[string]int{}
	s.levels = levels
	var level func(name string, depth int) int
	byName := map[string]*config.Process{}
	for i := range procs {
		byName[procs[i].Name] = &procs[i]
	}
	level = func(name string, depth int) int {
		if l, ok := levels[name]; ok {
			return l
		}
		p := byName[name]
		l := 0
		if p != nil && depth < len(procs) {
			for _, dep := range p.After {
				l = max(l, level(dep, depth+1)+1)
			}
		}
		levels[name] = l
		return l
	}
	for i := range procs {
		p := &procs[i]
		n := max(p.NumProcesses, 1)
		for k := 1; k <= n; k++ {
			s.insts = append(s.insts, s.newInstance(p, k, level(p.Name, 0)))
		}
	}
	s.setWidth()
}

func (s *supervisor) newInstance(p *config.Process, k, level int) *instance {
	name := instanceName(p, k)
	size := s.cfg.LogBytes
	if size <= 0 {
		size = 256 << 10
	}
	return &instance{
		cfg: p, name: name, index: k, level: level, color: len(s.insts),
		state: statePending, code: -1, delay: p.Backoff, logs: newLogRing(name, size),
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

// blocked reports whether a dependency of in can never become satisfied.
func (s *supervisor) blocked(in *instance) (string, bool) {
	for _, dep := range in.cfg.After {
		for _, d := range s.insts {
			if d.cfg.Name != dep {
				continue
			}
			if d.state == stateFatal || (d.state == stateExited && !(d.cfg.Oneshot && slices.Contains(d.cfg.SuccessCodes, d.code))) {
				return dep, true
			}
		}
	}
	return "", false
}

// startReady starts every pending instance whose dependencies are satisfied, in file order, and
// marks those that can never start.
func (s *supervisor) startReady() {
	if s.stopping {
		return
	}
	for _, in := range s.insts {
		if in.state != statePending {
			continue
		}
		if dep, ok := s.blocked(in); ok {
			in.state = stateFatal
			s.out.Event("%s will not start: %s ended", in.name, dep)
			continue
		}
		ready := true
		for _, dep := range in.cfg.After {
			if !s.satisfied(dep) {
				ready = false
				break
			}
		}
		if ready {
			s.start(in)
		}
	}
}

// start spawns in, wires its streams, and starts its readiness probe.
func (s *supervisor) start(in *instance) {
	spec, closeAfter, err := s.spec(in)
	if err == nil {
		var p *spawn.Process
		p, err = spawn.Start(s.r, spec)
		for _, f := range closeAfter {
			_ = f.Close()
		}
		if err == nil {
			in.proc = p
		}
	}
	if err != nil {
		// No relay owns the pipes of a child that never ran.
		for _, o := range in.readers {
			_ = o.f.Close()
		}
		in.readers = nil
		s.closeStreams(in)
		code := spawn.CodeNotExecutable
		var se *spawn.StartError
		if errors.As(err, &se) {
			code = se.Code
		}
		s.out.Event("%s cannot start: %v", in.name, err)
		in.started = time.Now()
		s.onExit(in, code)
		return
	}
	in.gen++
	in.started = time.Now()
	in.stopping, in.killed = false, false
	s.out.Event("%s started (pid %d)", in.name, in.proc.Pid)
	s.emit("spawn", in, -1, "")
	for _, r := range in.readers {
		s.relay(in, r)
	}
	if in.cfg.Ready.Kind == "" || in.cfg.Ready.Kind == "none" {
		in.state = stateRunning
		s.startReady()
		return
	}
	in.state = stateStarting
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go s.probe(ctx, in, in.gen)
}

// relay copies one of in's output streams to gaffer's stdout (stdout, custom streams) or stderr,
// labelled as redirect_output says.
func (s *supervisor) relay(in *instance, o output) {
	name, stream, dst := in.name, o.stream, s.out
	labels := in.cfg.RedirectOutput
	switch {
	case o.custom:
		name = in.name + ":" + o.stream
	case o.stream == "err":
		dst = s.errOut
		if len(labels) > 1 {
			stream = labels[1]
		}
	case len(labels) > 0:
		stream = labels[0]
	}
	ring := in.logs
	src := relay.Source{Name: name, Pid: in.proc.Pid, Stream: stream, Color: in.color, Tap: func(b []byte) { ring.add(stream, b) }}
	s.relays.Add(1)
	go func() {
		defer s.relays.Done()
		defer s.survive("relay of " + name)
		defer o.f.Close()
		_ = dst.Copy(o.f, src)
	}()
}

// spec builds the child of in: argv, environment, identity, and its streams. closeAfter are the
// child's ends, which gaffer closes once the child has them.
func (s *supervisor) spec(in *instance) (spawn.Spec, []*os.File, error) {
	p := in.cfg
	var base []string
	if !p.ClearEnv {
		base = os.Environ()
	}
	var sets []string
	keys := make([]string, 0, len(p.Env))
	for k := range p.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		sets = append(sets, k+"="+p.Env[k])
	}
	sets = append(sets, "GAFFER_PROCESS_NAME="+p.Name, "GAFFER_PROCESS_INSTANCE="+strconv.Itoa(in.index))
	spec := spawn.Spec{Name: in.name, Dir: p.Cwd}
	if p.User != "" {
		id, err := spawn.SystemUsers().Lookup(p.User)
		if err != nil {
			return spec, nil, fmt.Errorf("user %s: %w", p.User, err)
		}
		spec.Identity = &id
	}
	var streamFds []string
	for i, label := range p.CustomStreams {
		streamFds = append(streamFds, "GAFFER_STREAM_"+envName(label)+"="+strconv.Itoa(3+i))
	}
	spec.Env = spawn.Environ(base, spec.Identity, append(sets, streamFds...))
	spec.Argv = append([]string{}, p.Cmd...)
	for _, a := range p.Args {
		arg := os.Expand(a, func(k string) string { v, _ := spawn.Getenv(spec.Env, k); return v })
		if p.Shell && len(spec.Argv) == 3 {
			spec.Argv[2] += " " + shellQuote(arg)
		} else {
			spec.Argv = append(spec.Argv, arg)
		}
	}

	var closeAfter []*os.File
	in.readers = nil
	fail := func(err error) (spawn.Spec, []*os.File, error) {
		for _, f := range closeAfter {
			_ = f.Close()
		}
		for _, o := range in.readers {
			_ = o.f.Close()
		}
		in.readers = nil
		s.closeStreams(in)
		return spec, nil, err
	}
	if p.TTY {
		master, slave, err := pty.Open()
		if err != nil {
			return fail(fmt.Errorf("open pty: %w", err))
		}
		closeAfter = append(closeAfter, slave)
		spec.Stdin, spec.Stdout, spec.Stderr, spec.Session = slave, slave, slave, true
		// The relay owns the master and closes it; stdin writes share it.
		in.readers = append(in.readers, output{f: master, stream: "out"})
		if p.RedirectInput {
			in.stdin, in.stdinShared = master, true
		}
	} else {
		spec.Stdout, spec.Stderr = os.Stdout, os.Stderr
		for i, name := range []string{"out", "err"} {
			if i >= len(p.RedirectOutput) {
				break
			}
			r, w, err := os.Pipe()
			if err != nil {
				return fail(fmt.Errorf("pipe: %w", err))
			}
			closeAfter = append(closeAfter, w)
			in.readers = append(in.readers, output{f: r, stream: name})
			if i == 0 {
				spec.Stdout = w
			} else {
				spec.Stderr = w
			}
		}
		if p.RedirectInput {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(fmt.Errorf("pipe: %w", err))
			}
			closeAfter = append(closeAfter, r)
			spec.Stdin, in.stdin = r, w
		}
	}
	for _, label := range p.CustomStreams {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("stream %s: %w", label, err))
		}
		// Non-blocking, so that the runtime poller serves it and a read deadline can end the drain.
		_ = unix.SetNonblock(fds[0], true)
		mine := os.NewFile(uintptr(fds[0]), "stream "+label)
		theirs := os.NewFile(uintptr(fds[1]), label)
		closeAfter = append(closeAfter, theirs)
		spec.ExtraFiles = append(spec.ExtraFiles, theirs)
		in.streams = append(in.streams, mine)
		in.readers = append(in.readers, output{f: mine, stream: label, custom: true})
	}
	return spec, closeAfter, nil
}

// closeStreams closes gaffer's ends of in's stdin and custom streams.
func (s *supervisor) closeStreams(in *instance) {
	if in.stdin != nil && !in.stdinShared {
		_ = in.stdin.Close()
	}
	in.stdin, in.stdinShared = nil, false
	in.streams = nil
}

// survive keeps a panic in one of the supervisor's goroutines from ending PID 1, and the container
// with it: the goroutine's work is lost, gaffer goes on. Deferred first thing in each.
func (s *supervisor) survive(what string) {
	if r := recover(); r != nil {
		s.warnf("internal error in %s: %v", what, r)
	}
}

// probe polls in's readiness until it succeeds, the process goes, or ready_timeout passes.
func (s *supervisor) probe(ctx context.Context, in *instance, gen int) {
	defer s.survive("readiness probe of " + in.name)
	p := in.cfg.Ready
	deadline := time.Now().Add(in.cfg.ReadyTimeout)
	interval := 50 * time.Millisecond
	for {
		var err error
		if p.Kind == "exec" {
			err = s.execProbe(ctx, in)
		} else {
			err = probeOnce(ctx, p)
		}
		if err == nil {
			s.events <- event{kind: evReady, inst: in, gen: gen}
			return
		}
		if in.cfg.ReadyTimeout > 0 && time.Now().After(deadline) {
			s.events <- event{kind: evReadyTimeout, inst: in, gen: gen, err: err}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		interval = min(interval*2, time.Second)
	}
}

// execProbe runs the probe command as the process runs (user, directory, environment) and wants
// exit 0. Its exit comes through the reaper like every other child's.
func (s *supervisor) execProbe(ctx context.Context, in *instance) error {
	spec := spawn.Spec{Name: in.name + " probe", Argv: []string{"/bin/sh", "-c", in.cfg.Ready.Target}, Dir: in.cfg.Cwd, Env: os.Environ()}
	if in.cfg.User != "" {
		id, err := spawn.SystemUsers().Lookup(in.cfg.User)
		if err != nil {
			return err
		}
		spec.Identity = &id
	}
	p, err := spawn.Start(s.r, spec)
	if err != nil {
		return err
	}
	defer p.Release()
	select {
	case e := <-p.Exit:
		if c := e.Code(); c != 0 {
			return fmt.Errorf("exit %d", c)
		}
		return nil
	case <-ctx.Done():
		_ = p.Signal(unix.SIGKILL)
		return ctx.Err()
	}
}

func (s *supervisor) onEvent(ev event) {
	in := ev.inst
	if ev.gen != in.gen {
		return
	}
	switch ev.kind {
	case evRestart:
		if in.state == stateBackoff && !s.stopping {
			s.start(in)
		}
	case evReady:
		if in.state == stateStarting {
			in.state = stateReady
			s.out.Event("%s ready", in.name)
			s.emit("ready", in, -1, "")
			s.startReady()
		}
	case evReadyTimeout:
		if in.state == stateStarting && in.proc != nil {
			s.out.Event("%s not ready after %v (%v): stopping it", in.name, in.cfg.ReadyTimeout, ev.err)
			s.stop(in)
		}
	case evStopTimeout:
		if in.proc != nil {
			s.out.Event("%s still running %v after SIG%s: sending SIGKILL", in.name, in.cfg.StopTimeout, signals.Name(in.cfg.StopSignal))
			in.killed = true
			_ = unix.Kill(-in.proc.Pid, unix.SIGKILL)
		}
	}
}

// stop sends in's stop signal to its process group and arms its stop timeout.
func (s *supervisor) stop(in *instance) {
	if in.proc == nil || in.stopping {
		return
	}
	in.stopping = true
	in.state = stateStopping
	if in.cancel != nil {
		in.cancel()
	}
	if err := unix.Kill(-in.proc.Pid, in.cfg.StopSignal); err != nil && !errors.Is(err, unix.ESRCH) {
		s.warnf("stop %s: %v", in.name, err)
	}
	gen := in.gen
	time.AfterFunc(in.cfg.StopTimeout, func() { s.events <- event{kind: evStopTimeout, inst: in, gen: gen} })
}

func (s *supervisor) onSignal(sig syscall.Signal) {
	switch {
	case sig == unix.SIGCHLD:
		s.reap()
	case signals.NeverForward(sig):
		s.debugf("received SIG%s: not forwarded", signals.Name(sig))
	case signals.Terminating(sig):
		if s.stopping {
			s.out.Event("received SIG%s again: killing everything", signals.Name(sig))
			for _, in := range s.insts {
				if in.proc != nil && !in.cfg.Detach {
					in.killed = true
					_ = unix.Kill(-in.proc.Pid, unix.SIGKILL)
				}
			}
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
	orphans, _, err := s.r.Reap()
	if err != nil {
		s.warnf("%v", err)
	}
	if len(orphans) > 0 {
		s.debugf("reaped %d orphans", len(orphans))
		s.emit("reap", nil, -1, strconv.Itoa(len(orphans))+" orphans")
	}
	for _, in := range slices.Clone(s.insts) {
		if in.proc == nil {
			continue
		}
		select {
		case e := <-in.proc.Exit:
			s.emit("exit", in, e.Code(), "")
			in.proc.Release()
			in.proc = nil
			s.onExit(in, e.Code())
		default:
		}
	}
}

// onExit decides what follows the end of in: restart, give up, shut everything down, or nothing.
func (s *supervisor) onExit(in *instance, code int) {
	in.code = code
	if in.cancel != nil {
		in.cancel()
		in.cancel = nil
	}
	deadline := time.Now().Add(drainWait)
	for _, o := range in.readers {
		_ = o.f.SetReadDeadline(deadline)
	}
	in.readers = nil
	s.closeStreams(in)
	s.out.Event("%s exited with code %d%s", in.name, code, describeCode(code))

	if in.removing {
		in.logs.close()
		s.insts = slices.DeleteFunc(s.insts, func(x *instance) bool { return x == in })
		s.setWidth()
		s.out.Event("%s removed", in.name)
		if s.stopping {
			s.advance()
		}
		return
	}
	if s.stopping {
		in.state = stateExited
		if in.killed || !(code == 128+int(in.cfg.StopSignal) || slices.Contains(in.cfg.SuccessCodes, code)) {
			if !s.unclean && s.code == 0 {
				s.code = code
			}
			s.unclean = true
		}
		s.advance()
		return
	}
	if in.cfg.Detach || in.held {
		in.state = stateExited
		s.checkDone()
		return
	}
	success := slices.Contains(in.cfg.SuccessCodes, code) && !in.stopping
	if in.cfg.Oneshot && success {
		in.state = stateExited
		s.startReady()
		s.checkDone()
		return
	}
	restart := in.cfg.Restart == "always" || (in.cfg.Restart == "on-failure" && !success)
	if restart {
		now := time.Now()
		if in.cfg.MaxRestarts > 0 {
			in.recent = slices.DeleteFunc(in.recent, func(t time.Time) bool { return now.Sub(t) > in.cfg.RestartWindow })
			if len(in.recent) >= in.cfg.MaxRestarts {
				s.out.Event("%s gave up: %d restarts within %v", in.name, len(in.recent), in.cfg.RestartWindow)
				s.emit("gave-up", in, code, "")
				s.endForGood(in, code, false, true)
				return
			}
		}
		if now.Sub(in.started) >= in.cfg.BackoffMax {
			in.delay = in.cfg.Backoff
		}
		d := in.delay
		in.delay = min(in.delay*2, in.cfg.BackoffMax)
		in.recent = append(in.recent, now)
		in.restarts++
		in.state = stateBackoff
		s.out.Event("%s restarting in %v", in.name, d)
		s.emit("restart", in, code, d.String())
		gen := in.gen
		time.AfterFunc(d, func() { s.events <- event{kind: evRestart, inst: in, gen: gen} })
		return
	}
	s.endForGood(in, code, success, false)
}

// endForGood applies on_end to an instance that will not run again.
func (s *supervisor) endForGood(in *instance, code int, success, gaveUp bool) {
	in.state = stateExited
	if gaveUp || !success {
		in.state = stateFatal
		s.failure = code
	}
	shutdown := in.cfg.OnEnd != "ignore"
	if in.cfg.Oneshot && success {
		shutdown = false
	}
	if shutdown {
		s.shutdown(code, in.name+" ended")
		return
	}
	s.startReady()
	s.checkDone()
}

// checkDone shuts down when nothing runs and nothing will: exit with the last failure, or 0.
func (s *supervisor) checkDone() {
	if s.stopping {
		return
	}
	for _, in := range s.insts {
		if in.held {
			return // stopped over the API: it may be started again
		}
		switch in.state {
		case stateStarting, stateRunning, stateReady, stateStopping, stateBackoff:
			if !in.cfg.Detach {
				return
			}
		case statePending:
			if _, blocked := s.blocked(in); !blocked {
				return
			}
		}
	}
	s.shutdown(s.failure, "nothing left to run")
}

// shutdown starts the ordered stop of every process: highest level first, each level all at once,
// the next when the previous is gone.
func (s *supervisor) shutdown(code int, why string) {
	if s.stopping {
		return
	}
	s.stopping = true
	s.code = code
	if why != "" {
		s.out.Event("stopping: %s", why)
	}
	s.emit("shutdown", nil, -1, why)
	s.level = 0
	for _, in := range s.insts {
		s.level = max(s.level, in.level)
		if in.cancel != nil {
			in.cancel()
		}
		if in.proc == nil && in.state != stateFatal {
			in.state = stateExited
		}
	}
	s.advance()
}

// advance stops the current level, or moves to the next one when it is gone; after the last, what
// is left over goes to the run loop's sweep.
func (s *supervisor) advance() {
	for ; s.level >= 0; s.level-- {
		alive := false
		for _, in := range s.insts {
			if in.level != s.level || in.proc == nil || in.cfg.Detach {
				continue
			}
			alive = true
			s.stop(in)
		}
		if alive {
			return
		}
	}
	s.rest = &loop{
		cfg:    Config{Signals: s.cfg.Signals, Grace: s.cfg.Config.Settings.Grace},
		r:      s.r,
		isInit: s.isInit,
		debugf: s.debugf,
		warnf:  s.warnf,
		code:   s.code,
		skip:   s.detached,
		calls:  s.calls,
	}
}

// detached lists the pids of detached processes still running, which the sweep leaves alone.
func (s *supervisor) detached() []int {
	var out []int
	for _, in := range s.insts {
		if in.cfg.Detach && in.proc != nil {
			out = append(out, in.proc.Pid)
		}
	}
	return out
}

// finish stops whatever the processes left behind, as `gaffer --` does after its child, and
// returns the exit code.
func (s *supervisor) finish(ctx context.Context) int {
	l := s.rest
	l.draining = true
	if !l.drain() {
		l.run(ctx)
	}
	// Everything a process wrote before it exited reaches gaffer's output; the drain of each
	// stream is bounded since its process exited, and detached ones still running get as long.
	deadline := time.Now().Add(drainWait)
	for _, in := range s.insts {
		for _, o := range in.readers {
			_ = o.f.SetReadDeadline(deadline)
		}
	}
	s.awaitOutput()
	if n := s.out.Dropped() + s.errOut.Dropped(); n > 0 {
		s.warnf("%d bytes of output dropped: gaffer's stdout or stderr did not take them", n)
	}
	return s.code
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
			switch sig := sig.(syscall.Signal); {
			case sig == unix.SIGCHLD:
				if _, _, err := s.r.Reap(); err != nil {
					s.warnf("%v", err)
				}
			case signals.Terminating(sig):
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

// envName turns a stream label into the tail of an environment variable name.
func envName(label string) string {
	b := []byte(strings.ToUpper(label))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

package pid1

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gaffer/config"
	"gaffer/listen"
	"gaffer/reaper"
	"gaffer/sdnotify"
	"gaffer/spawn"

	"golang.org/x/sys/unix"
)

// The systemd protocols in `gaffer up`: sd_notify (readiness, status, watchdog, MAINPID) and socket
// activation. What reaches the loop are notes, handed over by the reader of the notify socket with
// loopCalls, and two timers of the instance's gen (evWatchdog, and evReadyTimeout moved by
// EXTEND_TIMEOUT_USEC); nothing of it blocks the loop.
//
// Messages are attributed by process tree: the reader walks up /proc from the sender's pid (as
// the kernel reported it with SO_PASSCRED) to gaffer's own pid, and the loop takes the nearest
// process on that chain that is an instance's process (the one gaffer started, or its MAINPID).
// A sender whose chain does not reach gaffer (someone else's process, or from outside gaffer's PID
// namespace, pid 0) is ignored in the reader; one that reaches gaffer through no instance, or an
// instance configured with neither ready = "notify" nor a watchdog, in the loop. Both are counted
// (Info.NotifyIgnored).

// Event kinds of the systemd protocols, beside those of up.go.
const (
	evWatchdog eventKind = 100 + iota // the watchdog deadline of the instance's run
)

// notifyState is what the systemd protocols keep of an instance; only the loop touches it.
type notifyState struct {
	status    string // STATUS=, shown as status_text; cleared at every start
	reloading bool   // RELOADING=1 was sent, READY=1 not yet again
	stopping  bool   // STOPPING=1 was sent: the watchdog is off for the rest of the run
	// watchdog is this run's deadline between two WATCHDOG=1 (watchdog, or WATCHDOG_USEC=); 0 is
	// none. It is armed while the instance is running or ready.
	watchdog   time.Duration
	wdDeadline time.Time // when the armed watchdog expires
	wdTimer    Timer     // the armed watchdog's timer, one of in.timers; nil when disarmed
	// readyBy is where EXTEND_TIMEOUT_USEC moved the ready timeout: not unready before it.
	readyBy time.Time
}

// systemd is the supervisor's side of the protocols: the notify socket, made at the first start
// that needs it, and the listening sockets, opened by Up before anything starts.
type systemd struct {
	s         *supervisor
	ignored   atomic.Uint64 // messages ignored: not from an instance's tree, refused, malformed
	mu        sync.Mutex
	sock      *sdnotify.Socket            // guarded by mu
	closed    bool                        // guarded by mu
	listeners map[string][]*listen.Socket // by process name; set before the loop starts
}

// wantsNotify reports whether p's processes get NOTIFY_SOCKET.
func wantsNotify(p *config.Process) bool {
	return p.Ready.Kind == config.ProbeNotify || p.Watchdog > 0
}

// open binds every listen address of the configuration, before anything starts: a bind failure
// is an error naming the process and the address, and nothing is left open. Unix socket files
// get the process's user and group, and listen_mode (default: 0777 less gaffer's umask, as a bind
// of the process's own would make them).
func (sd *systemd) open(s *supervisor) error {
	sd.s = s
	sd.listeners = map[string][]*listen.Socket{}
	umask := listen.Umask()
	for i := range s.cfg.Config.Processes {
		p := &s.cfg.Config.Processes[i]
		if len(p.Listen) == 0 {
			continue
		}
		o := listen.Options{Mode: p.ListenMode, UID: -1, GID: -1}
		if o.Mode == 0 {
			o.Mode = 0o777 &^ umask
		}
		if p.User != "" {
			id, err := spawn.SystemUsers().Lookup(p.User)
			if err != nil {
				sd.close()
				return fmt.Errorf("%s: user %s: %w", p.Name, p.User, err)
			}
			o.UID, o.GID = int(id.UID), int(id.GID)
		}
		for _, a := range p.Listen {
			sock, err := listen.Open(a, o)
			if err != nil {
				sd.close()
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			sd.listeners[p.Name] = append(sd.listeners[p.Name], sock)
		}
	}
	return nil
}

// close closes the listening sockets (removing their socket files) and the notify socket, which
// ends its reader. Up calls it once every process is gone.
func (sd *systemd) close() {
	for _, socks := range sd.listeners {
		for _, sock := range socks {
			sock.Close()
		}
	}
	sd.listeners = nil
	sd.mu.Lock()
	defer sd.mu.Unlock()
	sd.closed = true
	if sd.sock != nil {
		sd.sock.Close()
	}
}

// socket returns NOTIFY_SOCKET's value, making the socket and starting its reader the first time.
func (sd *systemd) socket() (string, error) {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	if sd.sock != nil {
		return sd.sock.Addr(), nil
	}
	if sd.closed || sd.s == nil {
		return "", errors.New("notify socket: gaffer is exiting")
	}
	sock, err := sdnotify.Listen()
	if err != nil {
		return "", err
	}
	sd.sock = sock
	go sd.read(sock)
	return sock.Addr(), nil
}

// The variables that the systemd protocols set: a process that uses neither gets none of them
// from gaffer's own environment (gaffer run by systemd, or by another gaffer, must not lend its
// manager's socket to its children), unless its env sets them.
func systemdVars() []string {
	return []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}
}

// shimPath is how a child re-executes gaffer's binary for the shim.
const shimPath = "/proc/self/exe"

// prepare adds the systemd protocols to the spec of in's process: NOTIFY_SOCKET and WATCHDOG_USEC,
// the listening sockets as fd 3, 4 ... (before the custom streams) with LISTEN_FDS and
// LISTEN_FDNAMES, and, for LISTEN_PID and WATCHDOG_PID, the shim that sets them to the child's
// own pid before it executes the command.
func (sd *systemd) prepare(in *instance, spec *spawn.Spec) error {
	p := in.cfg
	for _, k := range systemdVars() {
		if _, own := p.Env[k]; !own {
			spec.Env = unsetenv(spec.Env, k)
		}
	}
	var pids []string // set to the child's pid by the shim
	if wantsNotify(p) {
		addr, err := sd.socket()
		if err != nil {
			return err
		}
		spec.Env = spawn.Setenv(spec.Env, "NOTIFY_SOCKET", addr)
	}
	if p.Watchdog > 0 {
		spec.Env = spawn.Setenv(spec.Env, "WATCHDOG_USEC", strconv.FormatInt(p.Watchdog.Microseconds(), 10))
		pids = append(pids, "WATCHDOG_PID")
	}
	if len(p.Listen) > 0 {
		socks := sd.listeners[p.Name]
		if len(socks) != len(p.Listen) {
			return fmt.Errorf("the sockets of %s are not open", p.Name)
		}
		names := p.ListenNames
		if names == nil {
			for range p.Listen {
				names = append(names, p.Name)
			}
		}
		for _, kv := range listen.Environ(names) {
			k, v, _ := strings.Cut(kv, "=")
			spec.Env = spawn.Setenv(spec.Env, k, v)
		}
		for _, sock := range socks {
			spec.ExtraFiles = append(spec.ExtraFiles, sock.File)
		}
		pids = append(pids, "LISTEN_PID")
	}
	if len(pids) > 0 {
		path, err := spawn.LookPathAs(spec.Argv[0], spec.Dir, spec.Env, spec.Identity)
		if err != nil {
			return err
		}
		spec.Argv = sdnotify.ExecArgv(shimPath, pids, path, spec.Argv)
	}
	return nil
}

// note is one message for the loop, with what the reader learnt of its sender.
type note struct {
	chain []int // the sender and its ancestors up to gaffer, nearest first
	msg   sdnotify.Message
	// main holds MAINPID's process, when the message has one that could be opened, and
	// mainChain its ancestors; mainErr says why not.
	main      pidHandle
	mainChain []int
	mainErr   error
}

// pidHandle is a process gaffer did not start, held without being its parent (*sdnotify.Pidfd).
type pidHandle interface {
	PID() int
	Signal(sig syscall.Signal) error
	Pgid() int
	Exited() bool
	Wait() error // until it exited (nil) or Close (an error)
	Close() error
}

// read hands every message of the notify socket to the loop, one at a time: it waits until the
// loop has taken each, so a message is handled before anything its sender sends later (and before
// a BARRIER=1 behind it is released). It ends when the socket is closed or the loop is gone.
func (sd *systemd) read(sock *sdnotify.Socket) {
	s := sd.s
	defer survive(s.warnf, "notify socket reader")
	self := os.Getpid()
	for {
		d, err := sock.Read()
		if err != nil {
			return
		}
		if d.Dropped != "" || d.Pid <= 0 {
			sd.ignored.Add(1)
			s.debugf("notify: message from pid %d dropped: %s", d.Pid, orStr(d.Dropped, "not from gaffer's PID namespace"))
			continue
		}
		chain, ok := sdnotify.Lineage(d.Pid, self)
		if !ok {
			sd.ignored.Add(1)
			s.debugf("notify: message from pid %d ignored: not a descendant of gaffer", d.Pid)
			continue
		}
		n := note{chain: chain, msg: sdnotify.Parse(d.Data)}
		if pid := n.msg.MainPID; pid > 0 {
			// The pidfd first, then the walk, then the pidfd again: the walk is then of the
			// process the pidfd holds, not of one that reused its pid.
			h, err := sdnotify.OpenPidfd(pid)
			switch {
			case err != nil:
				n.mainErr = err
			default:
				mc, ok := sdnotify.Lineage(pid, self)
				if !ok || h.Exited() {
					h.Close()
					n.mainErr = errors.New("it is gone")
				} else {
					n.main, n.mainChain = h, mc
				}
			}
		}
		if s.do(func() { s.onNotify(n) }) != nil {
			if n.main != nil {
				n.main.Close()
			}
			return
		}
	}
}

// attribute returns the instance whose process is nearest the sender on chain, or nil.
func (s *supervisor) attribute(chain []int) *instance {
	for _, pid := range chain {
		for _, in := range s.insts {
			if in.proc == nil {
				continue
			}
			if in.proc.PID() == pid {
				return in
			}
			if a, ok := in.proc.(*adopted); ok && a.origin != nil && a.origin.PID() == pid {
				return in
			}
		}
	}
	return nil
}

// onNotify carries out one message, on the loop.
func (s *supervisor) onNotify(n note) {
	in := s.attribute(n.chain)
	if in == nil || !wantsNotify(in.cfg) {
		s.sd.ignored.Add(1)
		s.debugf("notify: message from pid %d ignored: not from a process with ready = \"notify\" or a watchdog", n.chain[0])
		closeHandle(n.main)
		return
	}
	if in.state == stateStopping && n.msg.Ready {
		n.msg.Ready = false // too late to be ready
	}
	m := n.msg
	if m.HasStatus && m.Status != in.notify.status {
		in.notify.status = m.Status
		s.out.Event("%s status: %s", in.name, m.Status)
		s.emit("status", in, -1, m.Status)
	}
	if m.Errno >= 0 {
		s.out.Event("%s reports errno %d (%s)", in.name, m.Errno, syscall.Errno(m.Errno).Error())
		s.emit("errno", in, m.Errno, syscall.Errno(m.Errno).Error())
	}
	if m.MainPID > 0 {
		s.adopt(in, n)
	} else {
		closeHandle(n.main)
	}
	if m.Reloading && !in.notify.reloading {
		in.notify.reloading = true
		s.out.Event("%s reloading", in.name)
		s.emit("reloading", in, -1, "")
	}
	if m.Stopping && !in.notify.stopping {
		in.notify.stopping = true
		s.disarmWatchdog(in)
		s.out.Event("%s stopping", in.name)
		s.emit("stopping", in, -1, "")
	}
	if m.ExtendTimeout > 0 && in.state == stateStarting {
		in.notify.readyBy = laterOf(in.notify.readyBy, s.clock.Now().Add(m.ExtendTimeout))
		s.debugf("%s: ready timeout extended to %s from now", in.name, m.ExtendTimeout)
	}
	if m.HasWatchdogTimeout {
		// This run's deadline from now on (0: none), also without a configured watchdog, as
		// systemd does; while starting, it is armed once the instance is ready.
		in.notify.watchdog = m.WatchdogTimeout
		if in.state == stateRunning || in.state == stateReady {
			s.armWatchdog(in)
		}
	}
	if m.Ready {
		switch {
		case in.state == stateStarting && in.cfg.Ready.Kind == config.ProbeNotify:
			s.onProbeResult(in, nil) // ready: dependents may start; the to() hook arms the watchdog
		case in.notify.reloading:
			in.notify.reloading = false
			s.out.Event("%s reloaded", in.name)
			s.emit("ready", in, -1, "reloaded")
		}
	}
	if m.Watchdog && in.notify.wdTimer != nil {
		s.armWatchdog(in)
	}
	if m.WatchdogTrigger && (in.state == stateRunning || in.state == stateReady || in.state == stateStarting) {
		s.unhealthy(in, "watchdog: triggered by the process")
	}
}

// notifyEntered is supervisor.to's hook: a new run starts afresh (no status, no reload, the
// configured watchdog), and the watchdog runs while the instance is running or ready.
func (s *supervisor) notifyEntered(in *instance, next state) {
	switch next {
	case stateStarting, stateRunning: // entered only when a process starts
		in.notify = notifyState{watchdog: in.cfg.Watchdog}
	}
	if next == stateRunning || next == stateReady {
		s.armWatchdog(in)
	}
}

// armWatchdog (re)starts in's watchdog from now; without one it only disarms.
func (s *supervisor) armWatchdog(in *instance) {
	s.disarmWatchdog(in)
	w := in.notify.watchdog
	if w <= 0 || in.notify.stopping || in.proc == nil {
		return
	}
	in.notify.wdDeadline = s.clock.Now().Add(w)
	s.after(in, w, evWatchdog)
	in.notify.wdTimer = in.timers[len(in.timers)-1]
}

// disarmWatchdog stops in's watchdog timer and takes it out of in.timers, so that pings do not
// pile timers up.
func (s *supervisor) disarmWatchdog(in *instance) {
	t := in.notify.wdTimer
	if t == nil {
		return
	}
	t.Stop()
	in.timers = slices.DeleteFunc(in.timers, func(x Timer) bool { return x == t })
	in.notify.wdTimer = nil
}

// onNotifyEvent handles the timer events of the systemd protocols (up.go's onEvent passes on the
// kinds it does not know, once the event is known to be of the current run).
func (s *supervisor) onNotifyEvent(ev event) {
	in := ev.inst
	switch ev.kind {
	case evWatchdog:
		// A ping re-armed it (a timer that fired before it could be stopped), or it was disarmed.
		if in.notify.wdTimer == nil || s.clock.Now().Before(in.notify.wdDeadline) {
			return
		}
		in.notify.wdTimer = nil
		if in.state == stateRunning || in.state == stateReady {
			s.unhealthy(in, fmt.Sprintf("watchdog: no ping for %v", in.notify.watchdog))
		}
	}
}

// readyExtended is the hook of evReadyTimeout: when EXTEND_TIMEOUT_USEC moved the deadline past
// now, the timeout is armed again for the rest, and reports true (not timed out yet).
func (s *supervisor) readyExtended(in *instance) bool {
	now := s.clock.Now()
	if in.state != stateStarting || !in.notify.readyBy.After(now) {
		return false
	}
	s.after(in, in.notify.readyBy.Sub(now), evReadyTimeout)
	return true
}

// unhealthy is what happens to an instance found unhealthy: for now by its watchdog (and, with
// the health checks, by them). The action is restart: it is stopped with its stop_signal and
// stop_timeout and started again after its restart backoff, whatever its restart policy; the
// restart counts toward max_restarts. on_unhealthy will choose among more actions here.
func (s *supervisor) unhealthy(in *instance, why string) {
	s.out.Event("%s %s", in.name, why)
	s.emit("unhealthy", in, -1, why)
	s.stopInstance(in, stopUnhealthy)
}

// adopted is an instance's main process named by MAINPID, which gaffer did not start: it is what
// gaffer then signals and whose end is the instance's end. Its exit comes through the reaper when
// gaffer reaps it (its parent died first, so it became gaffer's orphan: the exit code is known),
// or through its pidfd when another process collects it: then, while the process gaffer started
// runs, gaffer supervises that one again; else the exit code is the started process's, or unknown
// (255).
type adopted struct {
	h      pidHandle
	origin child            // the process gaffer started, until its exit is collected
	ended  *reaper.Exit     // the started process's exit, once collected
	exit   chan reaper.Exit // the main process's exit, once known
	stop   chan struct{}    // closed by Release: ends the watcher
	strays func(child)      // where a still running origin goes when this is released
	once   sync.Once
}

func (a *adopted) PID() int                      { return a.h.PID() }
func (a *adopted) Exit() <-chan reaper.Exit      { return a.exit }
func (a *adopted) Signal(s syscall.Signal) error { return killErrno(a.h.Signal(s)) }

// SignalGroup signals the started process's group (while it runs), the main process's own group
// (when it has left that one, and it is not gaffer's), and the main process itself.
func (a *adopted) SignalGroup(sig syscall.Signal) error {
	sent := false
	if a.origin != nil && a.origin.SignalGroup(sig) == nil {
		sent = true
	}
	if pg := a.h.Pgid(); pg > 1 && pg != unix.Getpgrp() && (a.origin == nil || pg != a.origin.PID()) {
		if unix.Kill(-pg, sig) == nil {
			sent = true
		}
	}
	if a.h.Signal(sig) == nil {
		sent = true
	}
	if !sent {
		return unix.ESRCH
	}
	return nil
}

// Release closes the pidfd and ends the watcher; a started process still running belongs to the
// run that just ended: it is killed with its group (a later run must not find it) and handed to
// the strays, whose exit the loop collects.
func (a *adopted) Release() {
	a.once.Do(func() {
		close(a.stop)
		a.h.Close()
		if a.origin != nil && a.strays != nil {
			_ = a.origin.SignalGroup(unix.SIGKILL)
			a.strays(a.origin)
		}
		a.origin = nil
	})
}

// unknownStatus is a wait status that reaper.Code reads as 255: the exit code is not known.
const unknownStatus = unix.WaitStatus(0x7f)

// adopt makes MAINPID in's main process, if it is in the instance's tree: the chain of the new pid
// goes through the current main process or the process gaffer started.
func (s *supervisor) adopt(in *instance, n note) {
	pid := n.msg.MainPID
	cur := in.proc.PID()
	if pid == cur {
		closeHandle(n.main)
		return
	}
	a, _ := in.proc.(*adopted)
	origin := in.proc
	if a != nil {
		origin = a.origin
	}
	if a != nil && origin != nil && pid == origin.PID() {
		closeHandle(n.main)
		s.revert(in, a, fmt.Sprintf("%s main process is %d again", in.name, pid))
		return
	}
	if n.main == nil {
		s.out.Event("%s MAINPID=%d ignored: %v", in.name, pid, n.mainErr)
		return
	}
	if !slices.Contains(n.mainChain, cur) && (origin == nil || !slices.Contains(n.mainChain, origin.PID())) {
		closeHandle(n.main)
		s.out.Event("%s MAINPID=%d ignored: not in its process tree", in.name, pid)
		s.sd.ignored.Add(1)
		return
	}
	na := &adopted{h: n.main, origin: origin, exit: make(chan reaper.Exit, 1), stop: make(chan struct{}),
		strays: func(c child) { s.strays = append(s.strays, c) }}
	if a != nil {
		a.origin = nil // it goes on with the new one
		a.Release()
	}
	s.setProc(in, na)
	s.out.Event("%s main process is now %d", in.name, pid)
	s.emit("mainpid", in, -1, strconv.Itoa(pid))
	go s.watchMain(in, na)
}

// watchMain tells the loop when a's process has exited.
func (s *supervisor) watchMain(in *instance, a *adopted) {
	defer survive(s.warnf, "watch of "+in.name+"'s main process")
	if a.h.Wait() != nil {
		return // released
	}
	select {
	case s.calls <- func() { s.onMainGone(in, a) }:
	case <-a.stop:
	case <-s.exited:
	}
}

// onMainGone: a's process has exited. Its exit reaches collect through a's channel.
func (s *supervisor) onMainGone(in *instance, a *adopted) {
	if in.proc != a {
		return // collected, replaced or released already
	}
	s.reap() // gaffer's own orphan by now? Then the reaper has its exit code (claimOrphans)
	if in.proc != a {
		return
	}
	s.pollOrigin(in, a)
	if a.origin != nil {
		// Its parent collects it, and that parent still runs: what gaffer started is the main
		// process again (a wrapper that waited for it exits with its code).
		s.revert(in, a, fmt.Sprintf("%s main process %d exited; the main process is %d again", in.name, a.PID(), a.origin.PID()))
		return
	}
	e := reaper.Exit{Pid: a.PID(), Status: unknownStatus}
	how := "its exit code is unknown: another process collected it"
	if a.ended != nil {
		e.Status = a.ended.Status
		how = fmt.Sprintf("another process collected it; the code is that of %d, which gaffer started", a.ended.Pid)
	}
	s.out.Event("%s main process %d exited: %s", in.name, a.PID(), how)
	a.exit <- e
	s.collect()
}

// revert makes the process gaffer started in's main process again, and releases a.
func (s *supervisor) revert(in *instance, a *adopted, event string) {
	origin := a.origin
	a.origin = nil
	a.Release()
	s.setProc(in, origin)
	s.out.Event("%s", event)
	s.emit("mainpid", in, -1, strconv.Itoa(origin.PID()))
	s.collect()
}

// pollOrigin collects the exit of the process gaffer started for in, when a MAINPID took its place
// and it has exited: the main process goes on.
func (s *supervisor) pollOrigin(in *instance, a *adopted) {
	if a.origin == nil {
		return
	}
	select {
	case e := <-a.origin.Exit():
		a.origin.Release()
		a.ended, a.origin = &e, nil
		s.out.Event("%s: process %d exited with code %d; main process %d goes on", in.name, e.Pid, e.Code(), a.PID())
	default:
	}
}

// collectNotify is collect's hook: the exits of started processes that a MAINPID replaced.
func (s *supervisor) collectNotify() {
	for _, in := range s.insts {
		if a, ok := in.proc.(*adopted); ok {
			s.pollOrigin(in, a)
		}
	}
}

// claimOrphans is reap's hook: an orphan that is an instance's MAINPID is that instance's exit,
// with its code; the others are returned.
func (s *supervisor) claimOrphans(orphans []reaper.Exit) []reaper.Exit {
	return slices.DeleteFunc(orphans, func(e reaper.Exit) bool {
		for _, in := range s.insts {
			if a, ok := in.proc.(*adopted); ok && a.PID() == e.Pid && len(a.exit) == 0 {
				a.exit <- e
				return true
			}
		}
		return false
	})
}

func closeHandle(h pidHandle) {
	if h != nil {
		h.Close()
	}
}

// killErrno turns os.ErrProcessDone into ESRCH, as kill reports it.
func killErrno(err error) error {
	if errors.Is(err, os.ErrProcessDone) {
		return unix.ESRCH
	}
	return err
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// unsetenv returns env without key.
func unsetenv(env []string, key string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == key
	})
}

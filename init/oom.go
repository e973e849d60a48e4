package pid1

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gaffer/cgroup"
	"gaffer/core"
	"gaffer/reaper"
	"gaffer/spawn"

	"golang.org/x/sys/unix"
)

// What gaffer does with the container's cgroup, in both modes: it names the processes the OOM
// killer takes, and in `gaffer up` it gives each process that sets a limit (memory_max, ...) a
// cgroup of its own.
//
// The kernel counts OOM kills per cgroup (memory.events oom_kill on v2, memory.oom_control on
// v1) and raises the count before it sends the SIGKILL, so a supervised process that died of
// SIGKILL while the count rose since the last look was killed by the OOM killer. A kill that no
// supervised process died of (a worker forked by one) is found by a look every oomLookEvery (and
// soon after every SIGKILL death): the count is read and the trees of the supervised processes
// are compared with the last look's. The look runs on a goroutine of its own and hands its
// result to the loop; the reads at a death run on the loop, bounded by oomReadWait.

// oomLookEvery is how often the count is read and the trees are compared: a /proc scan of the
// container, a few milliseconds for a thousand processes.
const oomLookEvery = 2 * time.Second

// oomLookSoon is how soon after a SIGKILL death (or a postponed look) the next look comes.
const oomLookSoon = 100 * time.Millisecond

// oomReadWait bounds the cgroupfs reads made on the loop at a death. They take microseconds; a
// kernel that stalls on them must not stall the loop that reaps.
const oomReadWait = 100 * time.Millisecond

// maxListed is how many lost pids a line names.
const maxListed = 5

// resourcesConfig configures resources.
type resourcesConfig struct {
	cg    *cgroup.Cgroup // the container's cgroup; nil: nothing is watched
	clock Clock
	// say prints gaffer's line about an OOM kill: an event line in `gaffer up`, a diagnostic on
	// stderr in `gaffer --`.
	say    Logf
	debugf Logf
	warnf  Logf
	// emit publishes an API event, when there is an API.
	emit func(core.Event)
	// post hands f to the loop; it may block until the loop takes it, or until gaffer exits.
	post func(f func())
	// roots lists the running supervised processes by name (called on the loop).
	roots func() map[string]int
	// running reports whether the supervised process name still runs as pid, its exit not yet
	// collected (called on the loop).
	running func(name string, pid int) bool
	// scan reads the trees below roots: pid -> name of its root (tests give a fake).
	scan func(roots map[string]int) (map[int]string, error)
	// onKill counts one OOM kill in name's tree (core.Process.OOMKills).
	onKill func(name string)
}

// resources is what the loop keeps of the container's cgroup. Only the loop touches it; the look
// goroutine gets copies.
type resources struct {
	resourcesConfig
	parent   *cgroup.Parent           // makes the per-process cgroups, once one is needed
	children map[string]*cgroup.Child // the per-process cgroups, by instance name

	ok      bool              // last is known
	last    uint64            // the container's OOM kill count at the last look
	perLast map[string]uint64 // each per-process cgroup's count at the last look
	tree    map[int]string    // pid -> name of the tree it was in at the last look
	killed  map[int]bool      // orphans reaped dead of SIGKILL since the last look
	timer   Timer             // the next look, when one is armed
	due     time.Time         // when it comes
	gen     int               // moves on at every arm: a timer of an older gen is stale
	busy    bool              // a look is under way
	soon    bool              // a look was wanted soon while one was under way
	closed  bool
	own     chan func()   // work for the loop, without a post of the mode's
	done    chan struct{} // closed by close: what waits to hand work over gives up
}

// init sets r up; cfg.cg is the container's cgroup, found by the caller (nil: none). Without
// cfg.post, r hands its work to the loop on a channel of its own, calls().
func (r *resources) init(cfg resourcesConfig) {
	cfg.clock = orSystem(cfg.clock)
	cfg.say, cfg.debugf, cfg.warnf = orSilent(cfg.say), orSilent(cfg.debugf), orSilent(cfg.warnf)
	if cfg.scan == nil {
		cfg.scan = readTrees
	}
	*r = resources{resourcesConfig: cfg, children: map[string]*cgroup.Child{}, perLast: map[string]uint64{}, killed: map[int]bool{}, done: make(chan struct{})}
	if r.post == nil {
		own, done := make(chan func()), r.done
		r.own = own
		r.post = func(f func()) {
			select {
			case own <- f:
			case <-done:
			}
		}
	}
}

// calls is the channel of work for the loop when r has no post of the mode's (nil otherwise,
// which never fires).
func (r *resources) calls() <-chan func() {
	if r == nil {
		return nil
	}
	return r.own
}

// begin takes the first count and arms the periodic look; nothing when there is no cgroup with
// a memory controller.
func (r *resources) begin() {
	if r == nil || r.cg == nil {
		return
	}
	n, err := boundedCount(r.cg.OOMKills)
	if err != nil {
		r.debugf("not watching for OOM kills: %v", err)
		r.cg = nil
		return
	}
	r.last, r.ok = n, true
	r.debugf("watching for OOM kills in %s (oom_kill %d)", r.cg, n)
	r.arm(oomLookEvery)
}

// close stops the looks and removes the per-process cgroups. Every process is gone by now.
func (r *resources) close() {
	if r == nil || r.closed || r.done == nil {
		return
	}
	r.closed = true
	close(r.done)
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.parent != nil {
		if err := r.parent.Close(); err != nil {
			r.warnf("%v", err)
		}
	}
}

// child returns the cgroup of the process name with limits l, made at its first start; nil when
// it sets no limit.
func (r *resources) child(name string, l cgroup.Limits) (*cgroup.Child, error) {
	if r == nil || !l.Any() {
		return nil, nil
	}
	if ch, ok := r.children[name]; ok {
		return ch, nil
	}
	if r.cg == nil {
		// config refused the limits where there is no cgroup; the cgroup went away since.
		return nil, fmt.Errorf("cannot give %s its limits: gaffer has no cgroup", name)
	}
	if r.parent == nil {
		r.parent = r.cg.NewParent()
	}
	ch, err := r.parent.Child(name, l)
	if err != nil {
		return nil, err
	}
	r.children[name] = ch
	if n, err := ch.OOMKills(); err == nil {
		r.perLast[name] = n
	}
	r.debugf("%s runs in %s", name, ch.Cgroup)
	return ch, nil
}

// exited judges the exit of the supervised process name (pid, status st): "exit", "signal", or
// "oom" when it died of SIGKILL and an OOM kill count rose since the last look: its own cgroup's
// when it has one (exact), else the container's (unless gaffer sent that SIGKILL itself, then the
// rise is left to the next look). An OOM kill is said in one line and published as an "oom"
// event.
func (r *resources) exited(name string, pid int, st unix.WaitStatus, byGaffer bool) string {
	switch {
	case !st.Signaled():
		return core.ExitReasonExit
	case st.Signal() != unix.SIGKILL:
		return core.ExitReasonSignal
	}
	if r == nil || r.cg == nil || !r.ok {
		return core.ExitReasonSignal
	}
	defer r.arm(oomLookSoon) // what else it took: a worker of another process
	delete(r.tree, pid)
	if ch := r.children[name]; ch != nil {
		if n, err := boundedCount(ch.OOMKills); err == nil && n > r.perLast[name] {
			r.perLast[name]++
			if total, err := boundedCount(r.cg.OOMKills); err == nil {
				r.last = min(r.last+1, max(total, r.last))
			}
			r.report(name, pid, ch.Cgroup)
			r.countKill(name)
			return core.ExitReasonOOM
		}
	}
	if byGaffer {
		return core.ExitReasonSignal
	}
	n, err := boundedCount(r.cg.OOMKills)
	if err != nil || n <= r.last {
		return core.ExitReasonSignal
	}
	r.last++
	r.report(name, pid, r.cg)
	r.countKill(name)
	return core.ExitReasonOOM
}

// report says that name (pid) was killed by the OOM killer, with the memory limit and working set
// of cg, the cgroup whose limit it hit.
func (r *resources) report(name string, pid int, cg *cgroup.Cgroup) {
	figures := "memory figures unavailable"
	var m *cgroup.MemoryStats
	if bounded(oomReadWait, func() { m, _ = cg.ReadMemory() }) && m != nil {
		figures = memoryFigures(m)
	}
	r.say("%s was killed by the OOM killer (%s)", name, figures)
	if r.emit != nil {
		r.emit(core.Event{Time: r.clock.Now(), Kind: "oom", Name: name, Pid: pid, Detail: figures})
	}
}

// memoryFigures is "memory limit 256 MiB, working set 255 MiB" ("no memory limit, ..." without
// one). The working set is read when gaffer sees the death: the victim's memory is freed by then.
func memoryFigures(m *cgroup.MemoryStats) string {
	limit := "no memory limit"
	if m.LimitBytes != nil {
		limit = "memory limit " + mib(*m.LimitBytes)
	}
	return limit + ", working set " + mib(m.WorkingSetBytes)
}

// mib writes a size for the OOM lines: 255 MiB, 1.5 GiB, 512 KiB.
func mib(n uint64) string {
	switch {
	case n < 1<<20:
		return strconv.FormatUint((n+512)>>10, 10) + " KiB"
	case n < 10<<30:
		return strconv.FormatUint((n+1<<19)>>20, 10) + " MiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
}

// reaped notes orphans that died of SIGKILL: an OOM victim reparented to gaffer (its parent was
// gone) is seen here.
func (r *resources) reaped(orphans []reaper.Exit) {
	if r == nil || r.cg == nil {
		return
	}
	for _, e := range orphans {
		if e.Status.Signaled() && e.Status.Signal() == unix.SIGKILL {
			r.killed[e.Pid] = true
			r.arm(oomLookSoon)
		}
	}
}

// arm schedules the next look within d; one already due sooner stays.
func (r *resources) arm(d time.Duration) {
	if r == nil || r.cg == nil || r.closed {
		return
	}
	if r.busy {
		r.soon = r.soon || d < oomLookEvery
		return
	}
	due := r.clock.Now().Add(d)
	if r.timer != nil {
		if !r.due.After(due) {
			return
		}
		r.timer.Stop()
	}
	r.gen++
	gen := r.gen
	r.due = due
	r.timer = r.clock.AfterFunc(d, func() {
		go r.post(func() { r.startLook(gen) })
	})
}

// look is what one look found.
type look struct {
	roots map[string]int    // the supervised processes when it began
	count uint64            // the container's OOM kill count
	per   map[string]uint64 // each per-process cgroup's
	tree  map[int]string    // pid -> name of its tree
	took  time.Duration     // how long the reads took
	err   error
}

// startLook runs on the loop: it hands the roots and cgroups to a look on a goroutine of its own.
func (r *resources) startLook(gen int) {
	if gen != r.gen || r.closed || r.busy {
		return // stale: another timer took its place
	}
	r.timer = nil
	r.busy = true
	roots := r.roots()
	cg, children := r.cg, maps.Clone(r.children)
	scan := r.scan
	go func() {
		defer survive(r.warnf, "OOM look")
		l := look{roots: roots, per: map[string]uint64{}}
		began := time.Now()
		if l.count, l.err = cg.OOMKills(); l.err == nil {
			for name, ch := range children {
				if n, err := ch.OOMKills(); err == nil {
					l.per[name] = n
				}
			}
			l.tree, l.err = scan(roots)
		}
		l.took = time.Since(began)
		r.post(func() { r.apply(l) })
	}()
}

// apply compares a look with the last one, on the loop.
func (r *resources) apply(l look) {
	r.busy = false
	if r.closed {
		return
	}
	// The looks take at most 1% of a cpu: a container of a thousand processes takes about 20 ms
	// to scan (measured), so they come less often than oomLookEvery there.
	next := max(oomLookEvery, 100*l.took)
	if r.soon {
		next, r.soon = oomLookSoon, false
	}
	if l.err != nil {
		r.debugf("OOM look: %v", l.err)
		r.arm(next)
		return
	}
	// A supervised process that is gone but whose exit the loop has not collected yet: its own
	// death says what it was. Look again soon.
	for name, pid := range l.roots {
		if _, ok := l.tree[pid]; !ok && r.running(name, pid) {
			r.arm(oomLookSoon)
			return
		}
	}
	before := r.last
	rise := uint64(0)
	if l.count > r.last {
		rise = l.count - r.last
		r.last = l.count
	}
	var inCgroup []string // processes whose own cgroup counted kills
	for name, n := range l.per {
		if n > r.perLast[name] {
			inCgroup = append(inCgroup, name)
			r.perLast[name] = n
		}
	}
	slices.Sort(inCgroup)
	lost := map[string][]int{} // name -> pids its tree lost
	for pid, name := range r.tree {
		if _, ok := l.tree[pid]; !ok {
			lost[name] = append(lost[name], pid)
		}
	}
	var strays []int // SIGKILLed orphans that were in no tree gaffer saw
	for pid := range r.killed {
		if _, ok := r.tree[pid]; !ok {
			strays = append(strays, pid)
		}
	}
	killed := r.killed
	if !sameKeys(r.tree, l.tree) {
		// Tests wait for this line to know that gaffer tracks a process.
		r.debugf("OOM watch: %s", describeTrees(l.tree))
	}
	r.tree, r.killed = l.tree, map[int]bool{}
	if rise > 0 {
		r.sayRise(before, r.last, inCgroup, lost, strays, killed)
	}
	r.arm(next)
}

// sameKeys reports whether a and b hold the same pids.
func sameKeys(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// sayRise says what a rise of the OOM kill count from before to now took.
func (r *resources) sayRise(before, now uint64, inCgroup []string, lost map[string][]int, strays []int, killed map[int]bool) {
	where := "the container"
	if len(inCgroup) == 1 {
		where = inCgroup[0] + "'s cgroup"
	}
	var whom []string
	names := slices.Sorted(maps.Keys(lost))
	for _, name := range names {
		pids := lost[name]
		slices.Sort(pids)
		whom = append(whom, fmt.Sprintf("%s's tree lost %s", name, pidList(pids, killed)))
	}
	if len(strays) > 0 {
		slices.Sort(strays)
		whom = append(whom, "gaffer reaped "+pidList(strays, nil)+", killed by SIGKILL")
	}
	if len(whom) == 0 {
		whom = append(whom, "no process gaffer tracks was seen to go")
	}
	line := fmt.Sprintf("the OOM killer killed a process in %s (oom_kill %d -> %d); %s", where, before, now, strings.Join(whom, "; "))
	r.say("%s", line)
	// The processes whose trees lost a pid count the kill (those in their own cgroup first).
	for _, name := range names {
		if len(inCgroup) == 0 || slices.Contains(inCgroup, name) {
			r.countKill(name)
		}
	}
	if r.emit != nil {
		e := core.Event{Time: r.clock.Now(), Kind: "oom", Detail: line}
		if len(names) == 1 {
			e.Name = names[0]
		}
		r.emit(e)
	}
}

// countKill is set by the mode: it counts one OOM kill in name's tree (core.Process.OOMKills).
func (r *resources) countKill(name string) {
	if r.onKill != nil {
		r.onKill(name)
	}
}

// pidList is "pid 812", "pid 812 (SIGKILL)" when gaffer reaped it dead of SIGKILL, or "pids
// 812, 813, 814, 815, 816 and 3 more".
func pidList(pids []int, killed map[int]bool) string {
	name := func(p int) string {
		if killed[p] {
			return strconv.Itoa(p) + " (SIGKILL)"
		}
		return strconv.Itoa(p)
	}
	if len(pids) == 1 {
		return "pid " + name(pids[0])
	}
	var b strings.Builder
	b.WriteString("pids ")
	for i, p := range pids {
		if i == maxListed {
			fmt.Fprintf(&b, " and %d more", len(pids)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name(p))
	}
	return b.String()
}

// describeTrees is the debug line of a look: each tree's pids.
func describeTrees(tree map[int]string) string {
	by := map[string][]int{}
	for pid, name := range tree {
		by[name] = append(by[name], pid)
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(by)) {
		pids := by[name]
		slices.Sort(pids)
		parts = append(parts, fmt.Sprintf("%s's tree: pids %v", name, pids))
	}
	return strings.Join(parts, "; ")
}

// readTrees returns, for every live process at or below one of roots, the name of that root.
// Zombies count as gone: their memory is freed. It walks down from the roots through
// /proc/PID/task/TID/children, which costs in proportion to the trees; as PID 1, where every
// process of the namespace is in a tree, or without those files, one scan of /proc is cheaper.
func readTrees(roots map[string]int) (map[int]string, error) {
	if os.Getpid() == 1 {
		return scanTrees(roots)
	}
	out, err := walkTrees(roots)
	if err != nil {
		return scanTrees(roots)
	}
	return out, nil
}

// walkTrees walks down from roots through the children files of every thread; errNoChildren when
// the kernel has none (CONFIG_PROC_CHILDREN).
func walkTrees(roots map[string]int) (map[int]string, error) {
	out := map[int]string{}
	buf := make([]byte, 4096)
	for name, root := range roots {
		queue := []int{root}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if _, seen := out[p]; seen {
				continue
			}
			if _, state, ok := statOf(p, buf); !ok || state == 'Z' {
				continue
			}
			tasks, err := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
			if err != nil {
				continue // gone
			}
			out[p] = name
			for _, task := range tasks {
				b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + task.Name() + "/children")
				if errors.Is(err, os.ErrNotExist) {
					if _, serr := os.Stat("/proc/" + strconv.Itoa(p) + "/task/" + task.Name()); serr == nil {
						return nil, errNoChildren
					}
					continue // the thread ended
				}
				for _, f := range bytes.Fields(b) {
					if c, err := strconv.Atoi(string(f)); err == nil {
						queue = append(queue, c)
					}
				}
			}
		}
	}
	return out, nil
}

// errNoChildren: the kernel has no /proc/PID/task/TID/children.
var errNoChildren = errors.New("no /proc/PID/task/TID/children")

// scanTrees reads /proc once and returns, for every live process at or below one of roots, the
// name of that root. Zombies count as gone: their memory is freed.
func scanTrees(roots map[string]int) (map[int]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	live := map[int]bool{}
	buf := make([]byte, 512)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, state, ok := statOf(pid, buf)
		if !ok || state == 'Z' {
			continue
		}
		live[pid] = true
		children[ppid] = append(children[ppid], pid)
	}
	out := map[int]string{}
	for name, root := range roots {
		if !live[root] {
			continue
		}
		queue := []int{root}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if _, seen := out[p]; seen {
				continue
			}
			out[p] = name
			queue = append(queue, children[p]...)
		}
	}
	return out, nil
}

// statOf reads the state and ppid of pid from /proc/PID/stat ("pid (comm) S ppid ..."; comm may
// hold spaces and parentheses, so the fields are read after the last ')').
func statOf(pid int, buf []byte) (ppid int, state byte, ok bool) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, false
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil || n <= 0 {
		return 0, 0, false
	}
	b := buf[:n]
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(string(f[1]))
	return ppid, f[0][0], err == nil
}

// bounded runs f and waits for it at most d; it reports whether f finished in time. f must write
// only what the caller reads after a true answer.
func bounded(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// boundedCount reads an OOM kill count within oomReadWait.
func boundedCount(read func() (uint64, error)) (uint64, error) {
	var n uint64
	var err error
	if !bounded(oomReadWait, func() { n, err = read() }) {
		return 0, fmt.Errorf("no answer from cgroupfs within %v", oomReadWait)
	}
	return n, err
}

// oomState is what an instance (or the child of `gaffer --`) keeps of how its runs ended.
type oomState struct {
	reason string // of the exit whose code is code
	code   int
	kills  int // OOM kills in its tree
}

// set records the reason of the exit with code.
func (o *oomState) set(reason string, code int) { o.reason, o.code = reason, code }

// view is core.Process's ExitReason and OOMKills when the last exit code is code (-1: none yet).
// A start that failed goes through no exit of a process: its code (126, 127) is an "exit".
func (o oomState) view(code int) (string, int) {
	switch {
	case code < 0:
		return "", o.kills
	case o.reason != "" && o.code == code:
		return o.reason, o.kills
	}
	return core.ExitReasonExit, o.kills
}

// initResources sets up the container's cgroup for `gaffer up`: OOM kills are named, in the
// event lines and the API, and processes with limits get cgroups of their own.
func (s *supervisor) initResources() {
	cg, err := cgroup.Self()
	if err != nil {
		s.debugf("no cgroup: %v", err)
		cg = nil
	}
	s.res.init(resourcesConfig{
		cg: cg, clock: s.clock, say: s.out.Event, debugf: s.debugf, warnf: s.warnf, emit: s.bus.emit,
		post: func(f func()) {
			select {
			case s.calls <- f:
			case <-s.exited:
			}
		},
		roots: s.running,
		running: func(name string, pid int) bool {
			for _, in := range s.insts {
				if in.name == name && in.proc != nil && in.proc.PID() == pid {
					return true
				}
			}
			return false
		},
		onKill: func(name string) {
			for _, in := range s.insts {
				if in.name == name {
					in.oom.kills++
				}
			}
		},
	})
	s.res.begin()
}

// running lists the running instances by name, on the loop.
func (s *supervisor) running() map[string]int {
	out := map[string]int{}
	for _, in := range s.insts {
		if in.proc != nil {
			out[in.name] = in.proc.PID()
		}
	}
	return out
}

// exitReason judges the exit e of in's process, before the loop acts on it: exit, signal, or oom
// (said in an event line).
func (s *supervisor) exitReason(in *instance, e reaper.Exit) {
	in.oom.set(s.res.exited(in.name, e.Pid, e.Status, in.killed), e.Code())
}

// initResources sets up the container's cgroup for `gaffer --`: the child's OOM kill, and those
// of the processes it forked, are named on stderr and in the API.
func (l *loop) initResources() {
	cg, err := cgroup.Self()
	if err != nil {
		l.debugf("no cgroup: %v", err)
		cg = nil
	}
	l.res.init(resourcesConfig{
		cg: cg, clock: l.clock, say: l.warnf, debugf: l.debugf, warnf: l.warnf,
		emit: func(e core.Event) {
			if l.bus != nil {
				l.bus.emit(e)
			}
		},
		roots: func() map[string]int {
			if l.sweep != nil {
				return map[string]int{}
			}
			return map[string]int{mainName: l.child.Pid}
		},
		running: func(name string, pid int) bool { return l.sweep == nil && pid == l.child.Pid },
		onKill:  func(string) { l.oom.kills++ },
	})
	l.res.begin()
}

// spawn starts spec as in's process: inside in's own cgroup when it sets limits, born there.
func (l *osLauncher) spawn(in *instance, spec spawn.Spec) (*spawn.Process, error) {
	ch, err := l.res.child(in.name, in.cfg.Limits)
	if err != nil {
		return nil, err
	}
	if ch == nil {
		return spawn.Start(l.r, spec)
	}
	var p *spawn.Process
	err = ch.Start(func(fd int) error {
		if fd >= 0 {
			spec.CgroupFD, spec.UseCgroupFD = fd, true
		}
		var err error
		p, err = spawn.Start(l.r, spec)
		return err
	})
	return p, err
}

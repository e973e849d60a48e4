package pid1

import (
	"bytes"
	"encoding/binary"
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
	// scan reads the trees below roots into into (cleared): pid -> name of its root (tests give
	// a fake).
	scan func(roots map[string]int, into map[int]string) (map[int]string, error)
	// onKill counts one OOM kill in name's tree (core.Process.OOMKills).
	onKill func(name string)
}

// resources is what the loop keeps of the container's cgroup. Only the loop touches it; the look
// goroutine gets copies.
type resources struct {
	resourcesConfig
	parent   *cgroup.Parent           // makes the per-process cgroups, once one is needed
	children map[string]*cgroup.Child // the per-process cgroups, by instance name
	// The counters of the looks (used by one look at a time), by instance name ("" for the
	// container's): they read without making garbage.
	counters map[string]*cgroup.OOMCounter

	ok      bool              // last is known
	last    uint64            // the container's OOM kill count at the last look
	perLast map[string]uint64 // each per-process cgroup's count at the last look
	tree    map[int]string    // pid -> name of the tree it was in at the last look
	spare   map[int]string    // the tree before last, for the next look to fill
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
		cfg.scan = new(treeReader).read
	}
	*r = resources{resourcesConfig: cfg, children: map[string]*cgroup.Child{}, counters: map[string]*cgroup.OOMCounter{},
		perLast: map[string]uint64{}, killed: map[int]bool{}, done: make(chan struct{})}
	if cfg.cg != nil {
		r.counters[""] = cfg.cg.NewOOMCounter()
	}
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
	r.counters[name] = ch.NewOOMCounter()
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
	counters := r.counters // not changed while a look runs: child() adds only on the loop, before
	if len(r.children) > 0 {
		counters = maps.Clone(r.counters)
	}
	scan, into := r.scan, r.spare
	r.spare = nil
	go func() {
		defer survive(r.warnf, "OOM look")
		l := look{roots: roots}
		began := time.Now()
		if l.count, l.err = counters[""].Read(); l.err == nil {
			for name, c := range counters {
				if name == "" {
					continue
				}
				if n, err := c.Read(); err == nil {
					if l.per == nil {
						l.per = map[string]uint64{}
					}
					l.per[name] = n
				}
			}
			l.tree, l.err = scan(roots, into)
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
	r.spare, r.tree = r.tree, l.tree
	if len(r.killed) > 0 {
		r.killed = map[int]bool{}
	}
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

// treeReader reads the trees of the supervised processes for the looks, with buffers of its
// own: a look every 2 s of an idle PID 1 leaves next to no garbage for the collector. One look at
// a time uses it.
type treeReader struct {
	dent  []byte // getdents
	buf   []byte // a stat or children file
	path  []byte
	procs []proc2 // scan: every live process, by parent
	live  []int   // scan: every live pid, in order
	queue []int
	tids  []int
}

// proc2 is a process and its parent.
type proc2 struct{ pid, ppid int }

// read fills into (cleared; a new map when nil) with every live process at or below one of
// roots, and the name of that root. Zombies count as gone: their memory is freed. It walks down
// from the roots through /proc/PID/task/TID/children, which costs in proportion to the trees; as
// PID 1, where every process of the namespace is in a tree, or without those files, one scan of
// /proc is cheaper.
func (t *treeReader) read(roots map[string]int, into map[int]string) (map[int]string, error) {
	if t.dent == nil {
		t.dent, t.buf = make([]byte, 8192), make([]byte, 4096)
	}
	if into == nil {
		into = map[int]string{}
	}
	clear(into)
	if os.Getpid() != 1 {
		err := t.walk(roots, into)
		if err == nil {
			return into, nil
		}
		clear(into)
	}
	return into, t.scan(roots, into)
}

// errNoChildren: the kernel has no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN).
var errNoChildren = errors.New("no /proc/PID/task/TID/children")

// walk walks down from roots through the children files of every thread.
func (t *treeReader) walk(roots map[string]int, into map[int]string) error {
	for name, root := range roots {
		t.queue = append(t.queue[:0], root)
		for len(t.queue) > 0 {
			p := t.queue[len(t.queue)-1]
			t.queue = t.queue[:len(t.queue)-1]
			if _, seen := into[p]; seen {
				continue
			}
			if _, state, ok := t.stat(p); !ok || state == 'Z' {
				continue
			}
			var err error
			t.path = strconv.AppendInt(append(t.path[:0], "/proc/"...), int64(p), 10)
			t.path = append(t.path, "/task"...)
			if t.tids, err = t.list(string(t.path), t.tids[:0]); err != nil {
				continue // gone
			}
			into[p] = name
			for _, tid := range t.tids {
				t.path = strconv.AppendInt(append(t.path[:0], "/proc/"...), int64(p), 10)
				t.path = strconv.AppendInt(append(t.path, "/task/"...), int64(tid), 10)
				t.path = append(t.path, "/children"...)
				b, err := t.readFile(string(t.path))
				if errors.Is(err, unix.ENOENT) {
					if unix.Access(string(t.path[:len(t.path)-len("/children")]), unix.F_OK) == nil {
						return errNoChildren
					}
					continue // the thread ended
				}
				for len(b) > 0 {
					var n int
					n, b = leadingInt(b)
					if n > 0 {
						t.queue = append(t.queue, n)
					}
				}
			}
		}
	}
	return nil
}

// scan reads the state and parent of every process in /proc once.
func (t *treeReader) scan(roots map[string]int, into map[int]string) error {
	var err error
	if t.tids, err = t.list("/proc", t.tids[:0]); err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	t.procs, t.live = t.procs[:0], t.live[:0]
	for _, pid := range t.tids {
		if ppid, state, ok := t.stat(pid); ok && state != 'Z' {
			t.procs = append(t.procs, proc2{pid, ppid})
			t.live = append(t.live, pid)
		}
	}
	slices.SortFunc(t.procs, func(a, b proc2) int { return a.ppid - b.ppid })
	slices.Sort(t.live)
	for name, root := range roots {
		if _, alive := slices.BinarySearch(t.live, root); !alive {
			continue
		}
		t.queue = append(t.queue[:0], root)
		for len(t.queue) > 0 {
			p := t.queue[len(t.queue)-1]
			t.queue = t.queue[:len(t.queue)-1]
			if _, seen := into[p]; seen {
				continue
			}
			into[p] = name
			i, _ := slices.BinarySearchFunc(t.procs, p, func(x proc2, ppid int) int { return x.ppid - ppid })
			for ; i < len(t.procs) && t.procs[i].ppid == p; i++ {
				t.queue = append(t.queue, t.procs[i].pid)
			}
		}
	}
	return nil
}

// list appends the numeric entries of the directory path (pids, tids) to dst.
func (t *treeReader) list(path string, dst []int) ([]int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return dst, err
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Getdents(fd, t.dent)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return dst, err
		}
		if n <= 0 {
			return dst, nil
		}
		for off := 0; off+19 <= n; {
			reclen := int(binary.NativeEndian.Uint16(t.dent[off+16:]))
			if reclen == 0 || off+reclen > n {
				break
			}
			if id, rest := leadingInt(t.dent[off+19 : off+reclen]); id > 0 && (len(rest) == 0 || rest[0] == 0) {
				dst = append(dst, id)
			}
			off += reclen
		}
	}
}

// readFile reads path into t.buf (at most its size).
func (t *treeReader) readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(t.buf) {
		m, err := unix.Read(fd, t.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return t.buf[:n], nil
}

// stat reads the state and ppid of pid from /proc/PID/stat ("pid (comm) S ppid ..."; comm may
// hold spaces and parentheses, so the fields are read after the last ')').
func (t *treeReader) stat(pid int) (ppid int, state byte, ok bool) {
	t.path = strconv.AppendInt(append(t.path[:0], "/proc/"...), int64(pid), 10)
	t.path = append(t.path, "/stat"...)
	b, err := t.readFile(string(t.path))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+4 >= len(b) || b[i+1] != ' ' || b[i+3] != ' ' {
		return 0, 0, false
	}
	ppid, _ = leadingInt(b[i+4:])
	return ppid, b[i+2], true
}

// leadingInt parses the decimal number at the start of b (after spaces) and returns it with what
// follows it; 0 when there is none.
func leadingInt(b []byte) (int, []byte) {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n') {
		b = b[1:]
	}
	n, i := 0, 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9' && i < 10; i++ {
		n = n*10 + int(b[i]-'0')
	}
	if i == 0 {
		for len(b) > 0 && b[0] != ' ' && b[0] != '\n' {
			b = b[1:] // not a number: skip it
		}
		return 0, b
	}
	return n, b[i:]
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

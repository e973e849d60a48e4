package cgroup

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Limits are the limits of one process's own cgroup; a zero field is not set.
type Limits struct {
	MemoryMax  uint64  // bytes: memory.max (v2), memory.limit_in_bytes (v1)
	MemoryHigh uint64  // bytes: memory.high (v2 only)
	CPUMax     float64 // cores: cpu.max (v2), cpu.cfs_quota_us / cpu.cfs_period_us (v1)
	PidsMax    uint64  // pids.max
}

// Any reports whether a limit is set.
func (l Limits) Any() bool { return l != Limits{} }

// cpuPeriod is the enforcement period gaffer writes with a cpu limit, the kernel's default
// (100 ms); the quota is cores times this.
const cpuPeriod = 100000

// LeafName is the v2 cgroup below the container's that gaffer moves itself (and whatever else
// ran in the container's cgroup) into before it makes cgroups for processes: on v2 a cgroup that
// hands controllers to its children may hold no process itself. `docker exec` processes land
// there too (runc joins the cgroup of the container's init when the top one is busy).
const LeafName = "init"

// childPrefix starts the name of each process's cgroup: gaffer.web, gaffer.web.2.
const childPrefix = "gaffer."

// LimitError says why one limit cannot be set here; Key is its config key (memory_max,
// memory_high, cpu_max, pids_max).
type LimitError struct {
	Key string
	Err error
}

func (e LimitError) Error() string { return e.Key + ": " + e.Err.Error() }

// CanLimit checks, without changing anything, that processes with the limits l can be given
// cgroups of their own below c: on v2 a delegated, writable subtree with the controllers the
// limits need; on v1 the controllers' hierarchies writable (as root). It returns one LimitError
// per limit that cannot be set. A nil c (no cgroup found) refuses every limit.
func (c *Cgroup) CanLimit(l Limits) []LimitError {
	var out []LimitError
	check := func(key string, set bool, ctrl string) {
		if !set {
			return
		}
		if err := c.canUse(key, ctrl); err != nil {
			out = append(out, LimitError{Key: key, Err: err})
		}
	}
	check("memory_max", l.MemoryMax > 0, Memory)
	check("memory_high", l.MemoryHigh > 0, Memory)
	check("cpu_max", l.CPUMax > 0, CPU)
	check("pids_max", l.PidsMax > 0, Pids)
	if c != nil && c.Version == 1 && l.CPUMax > 0 {
		// v1 refuses a child's quota above its parent's (EINVAL at the write).
		if s, err := c.readCPU(); err == nil && s.LimitCores != nil && l.CPUMax > *s.LimitCores+1e-9 {
			out = append(out, LimitError{Key: "cpu_max", Err: fmt.Errorf("%s cores is more than the container's cpu limit (%s cores): cgroup v1 refuses it", fmtCores(l.CPUMax), fmtCores(*s.LimitCores))})
		}
	}
	return out
}

func fmtCores(c float64) string { return strconv.FormatFloat(c, 'f', -1, 64) }

// v2Hint says how to give a container a writable cgroup v2 subtree.
const v2Hint = "run with --cgroupns=private and /sys/fs/cgroup writable (e.g. docker run --cgroupns=private --privileged), or delegate the subtree"

// canUse checks that a limit of controller ctrl can be set in a child of c.
func (c *Cgroup) canUse(key, ctrl string) error {
	if c == nil || c.Version == 0 {
		return fmt.Errorf("needs a writable cgroup v2 subtree: no cgroup found; %s", v2Hint)
	}
	if c.Version == 2 {
		dir := c.Unified
		for _, f := range []string{dir, filepath.Join(dir, "cgroup.subtree_control"), filepath.Join(dir, "cgroup.procs")} {
			if err := unix.Access(f, unix.W_OK); err != nil {
				return fmt.Errorf("needs a writable cgroup v2 subtree: %s: %v; %s", f, errnoText(err), v2Hint)
			}
		}
		b, err := readFile(filepath.Join(dir, "cgroup.controllers"))
		if err != nil {
			return fmt.Errorf("needs a writable cgroup v2 subtree: %v", err)
		}
		if !slices.Contains(strings.Fields(string(b)), ctrl) {
			return fmt.Errorf("needs the %s controller in the cgroup v2 subtree, which is not delegated here (cgroup.controllers: %q)", ctrl, strings.TrimSpace(string(b)))
		}
		return nil
	}
	if key == "memory_high" {
		return errors.New("needs cgroup v2: cgroup v1 has no memory.high (use memory_max)")
	}
	dir := c.V1[ctrl]
	if dir == "" {
		return fmt.Errorf("needs the cgroup v1 %s controller, which is not mounted here", ctrl)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("needs a writable cgroup (%s): %v; on cgroup v1 gaffer must run as root with the cgroup writable (in a container: -v /sys/fs/cgroup:/sys/fs/cgroup:rw, or --privileged)", dir, errnoText(err))
	}
	return nil
}

func errnoText(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// Parent makes, below the container's cgroup, the cgroups of processes that have limits, and
// removes them. It is not safe for concurrent use: one loop owns it.
type Parent struct {
	c *Cgroup
	// v2: gaffer moved itself into the leaf and enabled these controllers for the children.
	prepared  bool
	enabled   []string
	selfMoved bool // gaffer itself was among the processes moved into the leaf
	children  map[string]*Child
}

// NewParent returns the maker of child cgroups below c. Nothing changes until the first Child.
func (c *Cgroup) NewParent() *Parent {
	return &Parent{c: c, children: map[string]*Child{}}
}

// Child is the cgroup of one process (and whatever it forks).
type Child struct {
	Name string
	*Cgroup
	parent *Parent
	fd     int // v2: the directory, open for CLONE_INTO_CGROUP; -1 on v1
}

// Child returns the cgroup of the process called name with limits l, made (or, when a gaffer
// before this one left it, taken over) at the first call and kept for later runs of the same
// process. On v2 the first call moves gaffer and the processes beside it into LeafName and
// enables the controllers for the children.
func (p *Parent) Child(name string, l Limits) (*Child, error) {
	if ch, ok := p.children[name]; ok {
		return ch, nil
	}
	if !p.c.validName(name) {
		return nil, fmt.Errorf("cannot make a cgroup for %q: bad name", name)
	}
	var ch *Child
	var err error
	if p.c.Version == 2 {
		ch, err = p.childV2(name, l)
	} else {
		ch, err = p.childV1(name, l)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot make the cgroup of %s: %w", name, err)
	}
	p.children[name] = ch
	return ch, nil
}

func (c *Cgroup) validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\x00") && name != "." && name != ".."
}

func (p *Parent) childV2(name string, l Limits) (*Child, error) {
	if err := p.prepareV2(); err != nil {
		return nil, err
	}
	dir := filepath.Join(p.c.Unified, childPrefix+name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	// Every limit file the enabled controllers give is written, "max" for those not set: a
	// cgroup left by an earlier gaffer may hold other values.
	value := func(set bool, v string) string {
		if set {
			return v
		}
		return "max"
	}
	writes := []struct{ file, value string }{
		{"memory.max", value(l.MemoryMax > 0, strconv.FormatUint(l.MemoryMax, 10))},
		{"memory.high", value(l.MemoryHigh > 0, strconv.FormatUint(l.MemoryHigh, 10))},
		{"cpu.max", value(l.CPUMax > 0, strconv.FormatInt(quota(l.CPUMax), 10)) + " " + strconv.Itoa(cpuPeriod)},
		{"pids.max", value(l.PidsMax > 0, strconv.FormatUint(l.PidsMax, 10))},
	}
	for i := 0; i < len(writes); i++ {
		w := writes[i]
		if _, err := os.Stat(filepath.Join(dir, w.file)); err != nil && !strings.HasPrefix(w.value, "max") {
			_ = os.Remove(dir)
			return nil, fmt.Errorf("%s: the controller is not enabled for the children", w.file)
		} else if err != nil {
			writes = slices.Delete(writes, i, i+1)
			i--
		}
	}
	for _, w := range writes {
		if err := write(filepath.Join(dir, w.file), w.value); err != nil {
			_ = os.Remove(dir)
			return nil, err
		}
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	cg := &Cgroup{Version: 2, Unified: dir, Path: filepath.Join(p.c.Path, childPrefix+name), mounts: map[string]string{dir: p.c.mounts[p.c.Unified]}}
	return &Child{Name: name, Cgroup: cg, parent: p, fd: fd}, nil
}

// quota is the v2/v1 quota in microseconds per cpuPeriod for cores, at least the kernel's 1 ms.
func quota(cores float64) int64 {
	return max(int64(math.Round(cores*cpuPeriod)), 1000)
}

// prepareV2 moves every process of the container's cgroup into its leaf and enables the
// controllers for the children, once.
func (p *Parent) prepareV2() error {
	if p.prepared {
		return nil
	}
	dir := p.c.Unified
	leaf := filepath.Join(dir, LeafName)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	// Processes may fork while they are moved: go round until the cgroup is empty.
	for round := 0; ; round++ {
		b, err := readFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return err
		}
		pids := strings.Fields(string(b))
		if len(pids) == 0 {
			break
		}
		if round == 10 {
			return fmt.Errorf("cannot empty %s: processes keep appearing", dir)
		}
		for _, pid := range pids {
			if pid == strconv.Itoa(os.Getpid()) {
				p.selfMoved = true
			}
			if err := write(filepath.Join(leaf, "cgroup.procs"), pid); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
		}
	}
	b, err := readFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	have := strings.Fields(string(b))
	b, err = readFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	on := strings.Fields(string(b))
	for _, ctrl := range []string{Memory, CPU, Pids} {
		if !slices.Contains(have, ctrl) || slices.Contains(on, ctrl) {
			continue
		}
		// Right after a move the kernel may still see the processes and answer EBUSY for a
		// moment (crun#758): try again a few times.
		var err error
		for try := 0; try < 20; try++ {
			if err = write(filepath.Join(dir, "cgroup.subtree_control"), "+"+ctrl); !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err != nil {
			return err
		}
		p.enabled = append(p.enabled, ctrl)
	}
	p.prepared = true
	return nil
}

func (p *Parent) childV1(name string, l Limits) (*Child, error) {
	cg := &Cgroup{Version: 1, V1: map[string]string{}, mounts: map[string]string{}}
	made := []string{}
	fail := func(err error) (*Child, error) {
		for _, d := range slices.Backward(made) {
			_ = os.Remove(d)
		}
		return nil, err
	}
	mk := func(ctrl string) (string, error) {
		parent := p.c.V1[ctrl]
		dir := filepath.Join(parent, childPrefix+name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", err
		} else if err == nil {
			made = append(made, dir)
		}
		cg.V1[ctrl], cg.mounts[dir] = dir, p.c.mounts[parent]
		return dir, nil
	}
	// The memory cgroup is made whenever it can be: it makes the process's usage and OOM kills
	// exact, limit or not.
	if parent := p.c.V1[Memory]; parent != "" && (l.MemoryMax > 0 || unix.Access(parent, unix.W_OK) == nil) {
		dir, err := mk(Memory)
		if err != nil {
			return fail(err)
		}
		cg.Path = filepath.Join(p.c.Path, childPrefix+name)
		limit := "-1" // none; a cgroup left by an earlier gaffer may hold one
		if l.MemoryMax > 0 {
			limit = strconv.FormatUint(l.MemoryMax, 10)
		}
		if err := write(filepath.Join(dir, "memory.limit_in_bytes"), limit); err != nil {
			return fail(err)
		}
	}
	if l.MemoryHigh > 0 {
		return fail(errors.New("cgroup v1 has no memory.high"))
	}
	if l.CPUMax > 0 {
		dir, err := mk(CPU)
		if err != nil {
			return fail(err)
		}
		if err := write(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriod)); err != nil {
			return fail(err)
		}
		if err := write(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.FormatInt(quota(l.CPUMax), 10)); err != nil {
			return fail(err)
		}
	}
	if l.PidsMax > 0 {
		dir, err := mk(Pids)
		if err != nil {
			return fail(err)
		}
		if err := write(filepath.Join(dir, "pids.max"), strconv.FormatUint(l.PidsMax, 10)); err != nil {
			return fail(err)
		}
	}
	return &Child{Name: name, Cgroup: cg, parent: p, fd: -1}, nil
}

// write writes value to a cgroupfs file in one write, as the kernel wants it.
func write(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

// Start runs start, which must fork exactly one child, so that the child is born in ch: it never
// runs outside it, and neither does anything it forks.
//
// On v2, start gets the directory's descriptor for SysProcAttr.CgroupFD (clone3 with
// CLONE_INTO_CGROUP). v1 has no such thing: the thread that forks joins ch first (v1 places
// threads one by one through the tasks files), forks, and goes back; start gets -1. That thread
// is then ended, so that no thread of gaffer's can stay in a process's cgroup when the move back
// fails. The move costs a few milliseconds (measured 0.1 to 5 ms, the kernel waits for an RCU
// grace period); a write to cgroup.procs after the start would be cheaper but leaves a window in
// which the child runs, and forks, outside its cgroup (5 of 30 `sh -c 'sleep & ...'` escaped).
func (ch *Child) Start(start func(cgroupFD int) error) error {
	if ch.Version == 2 {
		return start(ch.fd)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread: its cgroups are the process's own (memory is charged to the
			// thread group leader's). Hold it, and fork from another thread.
			inner := make(chan error, 1)
			go ch.startOnThread(start, inner)
			err := <-inner
			runtime.UnlockOSThread()
			done <- err
			return
		}
		ch.startOnThread(start, done)
	}()
	return <-done
}

// startOnThread moves a locked thread of its own into ch's v1 cgroups, runs start, moves it back,
// and ends the thread (the goroutine returns still locked).
func (ch *Child) startOnThread(start func(int) error, done chan<- error) {
	runtime.LockOSThread()
	defer func() {
		if r := recover(); r != nil {
			done <- fmt.Errorf("internal error starting in %s: %v", ch.Cgroup, r)
		}
	}()
	tid := strconv.Itoa(unix.Gettid())
	var joined []string
	var err error
	for _, ctrl := range slices.Sorted(maps.Keys(ch.V1)) {
		if err = write(filepath.Join(ch.V1[ctrl], "tasks"), tid); err != nil {
			break
		}
		joined = append(joined, ctrl)
	}
	if err == nil {
		err = start(-1)
	}
	// Back where it was, for the little it still runs; a failure here is harmless, the thread ends.
	for _, ctrl := range joined {
		_ = write(filepath.Join(ch.parent.c.V1[ctrl], "tasks"), tid)
	}
	done <- err
}

// Remove removes ch's cgroups; they must be empty (every process in them gone).
func (ch *Child) Remove() error {
	if ch.fd >= 0 {
		_ = unix.Close(ch.fd)
		ch.fd = -1
	}
	delete(ch.parent.children, ch.Name)
	var errs []error
	if ch.Version == 2 {
		errs = append(errs, rmdir(ch.Unified))
	} else {
		for _, dir := range ch.V1 {
			errs = append(errs, rmdir(dir))
		}
	}
	return errors.Join(errs...)
}

func rmdir(dir string) error {
	if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cannot remove cgroup %s: %w", dir, err)
	}
	return nil
}

// Children returns the cgroups made so far, by process name.
func (p *Parent) Children() map[string]*Child {
	return p.children
}

// Close removes every child cgroup and, on v2, undoes what the first one did: the controllers
// are disabled again, gaffer moves back into the container's cgroup and the leaf is removed when
// nothing else is left in it. Processes still running in a child (a detached one) keep it.
func (p *Parent) Close() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(p.children)) {
		errs = append(errs, p.children[name].Remove())
	}
	if p.prepared {
		dir := p.c.Unified
		for _, ctrl := range slices.Backward(p.enabled) {
			errs = append(errs, write(filepath.Join(dir, "cgroup.subtree_control"), "-"+ctrl))
		}
		p.enabled = nil
		if p.selfMoved {
			if err := write(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
				errs = append(errs, err)
			}
			p.selfMoved = false
		}
		// Busy when something else still runs in it (a `docker exec` session): it stays.
		if err := unix.Rmdir(filepath.Join(dir, LeafName)); err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("cannot remove cgroup %s: %w", filepath.Join(dir, LeafName), err))
		}
		p.prepared = false
	}
	return errors.Join(errs...)
}

// Made lists the cgroups gaffer made below c for processes with limits (by a Parent, in this
// gaffer or an earlier one), by process name, each as a Cgroup to read.
func (c *Cgroup) Made() map[string]*Cgroup {
	out := map[string]*Cgroup{}
	if c == nil {
		return out
	}
	add := func(ctrl, parent string) {
		entries, err := os.ReadDir(parent)
		if err != nil {
			return
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), childPrefix)
			if !ok || !e.IsDir() {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			ch := out[name]
			if ch == nil {
				ch = &Cgroup{Version: c.Version, V1: map[string]string{}, Path: filepath.Join(c.Path, e.Name()), mounts: map[string]string{}}
				out[name] = ch
			}
			ch.mounts[dir] = c.mounts[parent]
			if c.Version == 2 {
				ch.Unified = dir
			} else {
				ch.V1[ctrl] = dir
			}
		}
	}
	if c.Version == 2 {
		add("", c.Unified)
		return out
	}
	for ctrl, dir := range c.V1 {
		add(ctrl, dir)
	}
	return out
}

package stats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v3/mem"
	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every architecture Go
// runs Linux on (sysconf(_SC_CLK_TCK) answers the same constant).
const clockTicks = 100

// rec is what the scan of /proc/*/stat keeps of one process.
type rec struct {
	pid, ppid      int
	utime, stime   uint64 // clock ticks
	cutime, cstime uint64 // clock ticks: of the children it waited for
	start          uint64 // starttime: clock ticks after boot; with pid, identifies the process
	threads        int32
}

// sample is the cpu time of one process at one collection, for the next cpu_percent.
type sample struct {
	start uint64
	cpu   uint64 // user + system clock ticks
	at    time.Time
}

// worker holds what one collection needs, kept between collections to save allocations. Only
// the goroutine running a collection touches it.
type worker struct {
	recs     []rec            // every process of the scan, sorted by ppid
	byPid    map[int]rec      // the scan by pid
	measured map[int]measured // this collection's measurements by pid
	queue    []int            // breadth-first walk of a tree
	prev     map[int]sample   // cpu samples of the previous collection
	next     map[int]sample   // cpu samples of this collection
	buf      []byte           // read buffer for the files of /proc/PID
	uptime   float64          // seconds since boot, read once per collection when needed

	afterScan func() // tests: runs between the scan and the measurements
}

// measured is one process's numbers in this collection.
type measured struct {
	Proc
	gone bool // vanished while measured: counts nowhere
}

func (w *worker) init() {
	w.byPid = map[int]rec{}
	w.measured = map[int]measured{}
	w.prev = map[int]sample{}
	w.next = map[int]sample{}
	w.buf = make([]byte, 4096)
}

// collect measures the trees of pids and gaffer's own process (self) at now.
func (w *worker) collect(ctx context.Context, now time.Time, self int, pids map[string]int) (Snapshot, error) {
	if err := w.scan(); err != nil {
		return Snapshot{}, err
	}
	if w.afterScan != nil {
		w.afterScan()
	}
	clear(w.measured)
	clear(w.next)
	w.uptime = 0
	var total uint64
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		total = vm.Total
	}

	snap := Snapshot{Time: now, Processes: make([]Entry, 0, len(pids))}
	for _, name := range names(pids) {
		if err := ctx.Err(); err != nil {
			return Snapshot{}, fmt.Errorf("cannot collect stats: %w", err)
		}
		root := pids[name]
		if _, ok := w.byPid[root]; !ok || root <= 0 {
			continue // not running any more
		}
		m, first := w.measure(root, now, total)
		if m.gone {
			continue // vanished: its orphans belong to no one now
		}
		e := Entry{Name: name, Pid: root, Proc: m.Proc}
		count(&e, &snap.Total, &m, first)
		// Walk the descendants breadth first; the bound on the queue guards against a cycle
		// that pids reused during the scan could fake.
		w.queue = w.children(root, w.queue[:0])
		for i := 0; i < len(w.queue) && len(w.queue) <= len(w.recs); i++ {
			pid := w.queue[i]
			w.queue = w.children(pid, w.queue)
			if m, first := w.measure(pid, now, total); !m.gone {
				count(&e, &snap.Total, &m, first)
			}
		}
		snap.Processes = append(snap.Processes, e)
	}
	if m, _ := w.measure(self, now, total); !m.gone {
		snap.Gaffer = m.Proc
	}

	// Keep the samples of the processes seen now, drop the others. A collection that fails
	// keeps the older samples instead.
	w.prev, w.next = w.next, w.prev
	return snap, nil
}

// count adds m to the tree of e and, the first time m is seen in this collection, to total: each
// process counts once in the total, even when it is in two trees.
func count(e *Entry, total *Proc, m *measured, first bool) {
	e.Tree.add(&m.Proc)
	e.Procs++
	if first {
		total.add(&m.Proc)
	}
}

// add sums q into p.
func (p *Proc) add(q *Proc) {
	p.CPUPercent += q.CPUPercent
	p.CPUUserS += q.CPUUserS
	p.CPUSystemS += q.CPUSystemS
	p.CPUChildrenS += q.CPUChildrenS
	p.MemoryRSS += q.MemoryRSS
	p.MemoryVMS += q.MemoryVMS
	p.MemoryPercent += q.MemoryPercent
	p.NumThreads += q.NumThreads
	p.NumFDs += q.NumFDs
	p.IOReadBytes += q.IOReadBytes
	p.IOWriteBytes += q.IOWriteBytes
	p.CtxSwitches += q.CtxSwitches
}

// children appends the children of pid to dst.
func (w *worker) children(pid int, dst []int) []int {
	i, _ := slices.BinarySearchFunc(w.recs, pid, func(r rec, ppid int) int { return r.ppid - ppid })
	for ; i < len(w.recs) && w.recs[i].ppid == pid; i++ {
		dst = append(dst, w.recs[i].pid)
	}
	return dst
}

// measure returns pid's numbers, measuring it the first time it is asked for in this collection
// (first is then true). memTotal is the machine's memory, for memory_percent.
func (w *worker) measure(pid int, now time.Time, memTotal uint64) (m measured, first bool) {
	if m, ok := w.measured[pid]; ok {
		return m, false
	}
	if err := w.read(pid, now, memTotal, &m.Proc); err != nil {
		m.gone = true
	}
	w.measured[pid] = m
	return m, true
}

// read fills p with pid's numbers. It fails only when the process is gone; numbers it may not
// read (io of another user's process without CAP_SYS_PTRACE) stay 0.
//
// The cpu times and the thread count come from the scan of /proc/PID/stat, which had to read
// that file anyway; the rest from statm, fd, io and status (see procfs.go).
func (w *worker) read(pid int, now time.Time, memTotal uint64, p *Proc) error {
	r, ok := w.byPid[pid]
	if !ok {
		return errVanished
	}
	p.CPUUserS, p.CPUSystemS = float64(r.utime)/clockTicks, float64(r.stime)/clockTicks
	p.CPUChildrenS = float64(r.cutime+r.cstime) / clockTicks
	p.NumThreads = r.threads

	rss, vms, err := memory(pid, &w.buf)
	if gone(err) {
		return errVanished
	} else if err == nil {
		p.MemoryRSS, p.MemoryVMS = rss, vms
		if memTotal > 0 {
			// What gopsutil's MemoryPercent computes, without reading /proc/meminfo per process.
			p.MemoryPercent = 100 * float64(rss) / float64(memTotal)
		}
	}
	if n, err := numFDs(pid, &w.buf); err == nil {
		p.NumFDs = n
	}
	if rd, wr, err := ioBytes(pid, &w.buf); err == nil {
		p.IOReadBytes, p.IOWriteBytes = rd, wr
	}
	cs, err := ctxSwitches(pid, &w.buf)
	if gone(err) {
		return errVanished
	} else if err == nil {
		p.CtxSwitches = cs
	}
	p.CPUPercent = w.cpuPercent(pid, r, now)
	return nil
}

// gone reports whether err says that the process no longer exists.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// cpuPercent is the cpu time the process r used since the previous collection, divided by the
// wall time between them, in percent of one cpu (a process busy on two cpus shows 200). The first
// time a process is seen, it is the average since the process started, as ps(1) shows it.
func (w *worker) cpuPercent(pid int, r rec, now time.Time) float64 {
	cpu := r.utime + r.stime
	w.next[pid] = sample{start: r.start, cpu: cpu, at: now}
	var used, wall float64
	if prev, ok := w.prev[pid]; ok && prev.start == r.start {
		if cpu < prev.cpu {
			return 0
		}
		used, wall = float64(cpu-prev.cpu)/clockTicks, now.Sub(prev.at).Seconds()
	} else {
		if w.uptime == 0 {
			w.uptime = readUptime()
		}
		used, wall = float64(cpu)/clockTicks, w.uptime-float64(r.start)/clockTicks
	}
	if wall <= 0 || used <= 0 {
		return 0
	}
	return 100 * used / wall
}

// readUptime returns the seconds since boot from /proc/uptime (the clock of starttime), or 0.
func readUptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f, _, _ := bytes.Cut(b, []byte(" "))
	v, err := strconv.ParseFloat(string(f), 64)
	if err != nil {
		return 0
	}
	return v
}

// scan reads the parent and start time of every process from /proc/*/stat, once per collection.
func (w *worker) scan() error {
	d, err := os.Open("/proc")
	if err != nil {
		return fmt.Errorf("cannot list processes: %w", err)
	}
	ents, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("cannot list processes: %w", err)
	}
	w.recs = w.recs[:0]
	clear(w.byPid)
	for _, name := range ents {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue
		}
		r, ok := w.stat(name)
		if !ok {
			continue // gone since the listing
		}
		r.pid = pid
		w.recs = append(w.recs, r)
		w.byPid[pid] = r
	}
	slices.SortFunc(w.recs, func(a, b rec) int { return a.ppid - b.ppid })
	return nil
}

// stat reads ppid and starttime from /proc/<name>/stat.
func (w *worker) stat(name string) (rec, bool) {
	fd, err := unix.Open("/proc/"+name+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return rec{}, false
	}
	n, err := unix.Read(fd, w.buf)
	unix.Close(fd)
	if err != nil || n <= 0 {
		return rec{}, false
	}
	return parseStat(w.buf[:n])
}

// parseStat parses the fields of /proc/PID/stat that the scan needs (see proc(5)). The command
// name (field 2) is in parentheses and may hold spaces and parentheses itself, so fields count
// from the last ')'.
func parseStat(b []byte) (rec, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return rec{}, false
	}
	b = b[i+1:]
	var r rec
	// After ')', field n of proc(5) has index n-3: ppid (4) is 1, utime (14) 11, stime (15) 12,
	// cutime (16) 13, cstime (17) 14, num_threads (20) 17, starttime (22) 19.
	for idx := 0; idx <= 19; idx++ {
		b = bytes.TrimLeft(b, " ")
		end := bytes.IndexAny(b, " \n")
		if end < 0 {
			end = len(b)
		}
		f := b[:end]
		b = b[end:]
		var err error
		switch idx {
		case 1:
			r.ppid, err = strconv.Atoi(string(f))
		case 11:
			r.utime, err = strconv.ParseUint(string(f), 10, 64)
		case 12:
			r.stime, err = strconv.ParseUint(string(f), 10, 64)
		case 13:
			r.cutime, err = strconv.ParseUint(string(f), 10, 64)
		case 14:
			r.cstime, err = strconv.ParseUint(string(f), 10, 64)
		case 17:
			var n int64
			n, err = strconv.ParseInt(string(f), 10, 32)
			r.threads = int32(n)
		case 19:
			r.start, err = strconv.ParseUint(string(f), 10, 64)
		}
		if err != nil {
			return rec{}, false
		}
	}
	return r, true
}

package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stats is what the container's cgroup says of its limits and usage. A section is nil when its
// controller is not there to read; inside one, a nil limit means unlimited.
type Stats struct {
	Version  int          `json:"cgroup_version"`
	Path     string       `json:"path"`
	Memory   *MemoryStats `json:"memory"`
	CPU      *CPUStats    `json:"cpu"`
	Pids     *PidsStats   `json:"pids"`
	Pressure *Pressure    `json:"pressure"`
}

// MemoryStats is the memory controller's view.
type MemoryStats struct {
	LimitBytes *uint64 `json:"limit_bytes"` // the lowest limit of the cgroup and its ancestors; nil: unlimited
	UsageBytes uint64  `json:"usage_bytes"` // page cache included
	// WorkingSetBytes is usage minus inactive file pages, as the kubelet computes it: what the
	// kernel cannot easily reclaim, and what its evictions go by.
	WorkingSetBytes uint64  `json:"working_set_bytes"`
	SwapBytes       *uint64 `json:"swap_bytes,omitempty"` // nil when swap is not accounted
	// OOMKills counts the processes the OOM killer killed in the cgroup and below it.
	OOMKills uint64 `json:"oom_kills"`
}

// CPUStats is the cpu controller's view.
type CPUStats struct {
	LimitCores       *float64 `json:"limit_cores"` // quota / period, the lowest of the cgroup and its ancestors; nil: unlimited
	UsageSeconds     float64  `json:"usage_seconds"`
	Periods          uint64   `json:"periods"`           // enforcement periods that had runnable tasks
	ThrottledPeriods uint64   `json:"throttled_periods"` // of those, the ones that ran out of quota
	ThrottledSeconds float64  `json:"throttled_seconds"`
}

// PidsStats is the pids controller's view.
type PidsStats struct {
	Limit   *uint64 `json:"limit"` // nil: unlimited
	Current uint64  `json:"current"`
}

// Pressure is the pressure stall information of the cgroup (cgroup v2's files; in the hybrid
// layout, those of the process's v2 cgroup).
type Pressure struct {
	CPU    *PSI `json:"cpu"`
	Memory *PSI `json:"memory"`
	IO     *PSI `json:"io"`
}

// PSI is one resource's pressure: the share of time some, or all (full), runnable tasks were
// stalled on it.
type PSI struct {
	Some PSILine  `json:"some"`
	Full *PSILine `json:"full"`
}

// PSILine is one line of a pressure file: averages in percent over 10 and 60 seconds, and the
// total stall time.
type PSILine struct {
	Avg10        float64 `json:"avg10"`
	Avg60        float64 `json:"avg60"`
	TotalSeconds float64 `json:"total_seconds"`
}

// maxRead bounds every file read: cgroupfs files are small (memory.stat is a few KiB).
const maxRead = 64 << 10

// maxWalk bounds the directories summed over a v1 subtree for its OOM kills.
const maxWalk = 1000

// v1Unlimited: v1 reports no memory limit as PAGE_COUNTER_MAX pages (9223372036854771712 with
// 4 KiB pages); anything this large is no limit.
const v1Unlimited = 1 << 62

// readFile reads a cgroupfs file, at most maxRead bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRead))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// readUint reads a file holding one number.
func readUint(path string) (uint64, error) {
	b, err := readFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// readMax reads a v2 limit file: "max" is nil (unlimited), else a number.
func readMax(path string) (*uint64, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parseMax(path, string(bytes.TrimSpace(b)))
}

func parseMax(what, s string) (*uint64, error) {
	if s == "max" {
		return nil, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s: %q is not a limit", what, s)
	}
	return &n, nil
}

// keyed reads a flat keyed file ("key value" lines: memory.stat, cpu.stat, memory.events,
// memory.oom_control) into a map.
func keyed(path string) (map[string]uint64, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parseKeyed(b), nil
}

func parseKeyed(b []byte) map[string]uint64 {
	out := map[string]uint64{}
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64); err == nil {
			out[string(k)] = n
		}
	}
	return out
}

// parsePSI reads a pressure file: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and, for
// memory and io (and cpu since Linux 5.13), a "full" line.
func parsePSI(b []byte) (*PSI, error) {
	var p PSI
	seen := false
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		var l PSILine
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("bad pressure field %q", kv)
			}
			switch k {
			case "avg10":
				l.Avg10 = x
			case "avg60":
				l.Avg60 = x
			case "total":
				l.TotalSeconds = x / 1e6 // microseconds
			}
		}
		switch f[0] {
		case "some":
			p.Some, seen = l, true
		case "full":
			p.Full = &l
		}
	}
	if !seen {
		return nil, errors.New("no \"some\" line")
	}
	return &p, nil
}

// Read reads everything the cgroup tells of its limits and usage. What cannot be read is left
// out (its section nil); an error is returned only when nothing could be read.
func (c *Cgroup) Read() (*Stats, error) {
	if c == nil {
		return nil, ErrNone
	}
	s := &Stats{Version: c.Version, Path: c.Path}
	var errs []error
	var err error
	if s.Memory, err = c.ReadMemory(); err != nil {
		errs = append(errs, err)
	}
	if s.CPU, err = c.readCPU(); err != nil {
		errs = append(errs, err)
	}
	if s.Pids, err = c.readPids(); err != nil {
		errs = append(errs, err)
	}
	s.Pressure = c.readPressure()
	if s.Memory == nil && s.CPU == nil && s.Pids == nil && s.Pressure == nil {
		return nil, fmt.Errorf("cannot read %s: %w", c, errors.Join(errs...))
	}
	return s, nil
}

// ReadMemory reads the memory controller: limit, usage, working set, swap and OOM kills.
func (c *Cgroup) ReadMemory() (*MemoryStats, error) {
	dir := c.dir(Memory)
	if dir == "" {
		return nil, errors.New("no memory controller")
	}
	m := &MemoryStats{}
	var err error
	if c.Version == 2 {
		if m.UsageBytes, err = readUint(filepath.Join(dir, "memory.current")); err != nil {
			return nil, err
		}
		if m.LimitBytes, err = c.minOver(dir, "memory.max"); err != nil {
			return nil, err
		}
		st, err := keyed(filepath.Join(dir, "memory.stat"))
		if err != nil {
			return nil, err
		}
		m.WorkingSetBytes = workingSet(m.UsageBytes, st["inactive_file"])
		if n, err := readUint(filepath.Join(dir, "memory.swap.current")); err == nil {
			m.SwapBytes = &n
		}
		if m.OOMKills, err = c.OOMKills(); err != nil {
			return nil, err
		}
		return m, nil
	}
	if m.UsageBytes, err = readUint(filepath.Join(dir, "memory.usage_in_bytes")); err != nil {
		return nil, err
	}
	st, err := keyed(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return nil, err
	}
	limit, err := readUint(filepath.Join(dir, "memory.limit_in_bytes"))
	if err != nil {
		return nil, err
	}
	// hierarchical_memory_limit is the lowest limit on the way up: a container's limit may sit on
	// a parent of gaffer's cgroup.
	if h, ok := st["hierarchical_memory_limit"]; ok && h < limit {
		limit = h
	}
	if limit < v1Unlimited {
		m.LimitBytes = &limit
	}
	m.WorkingSetBytes = workingSet(m.UsageBytes, st["total_inactive_file"])
	if n, ok := st["total_swap"]; ok {
		m.SwapBytes = &n
	}
	if m.OOMKills, err = c.OOMKills(); err != nil {
		return nil, err
	}
	return m, nil
}

// workingSet is usage minus inactive file pages, never below 0.
func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile > usage {
		return 0
	}
	return usage - inactiveFile
}

// OOMKills counts the processes the OOM killer killed in the cgroup and below it. On v2,
// memory.events counts the subtree; on v1 each memory cgroup counts only its own victims, so the
// subtree is summed.
func (c *Cgroup) OOMKills() (uint64, error) {
	dir := c.dir(Memory)
	if dir == "" {
		return 0, errors.New("no memory controller")
	}
	if c.Version == 2 {
		ev, err := keyed(filepath.Join(dir, "memory.events"))
		if err != nil {
			return 0, err
		}
		return ev["oom_kill"], nil
	}
	return sumOOMv1(dir)
}

// sumOOMv1 adds up memory.oom_control's oom_kill over dir and the cgroups below it (at most
// maxWalk of them).
func sumOOMv1(dir string) (uint64, error) {
	oc, err := keyed(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return 0, err
	}
	total, n := oc["oom_kill"], 0
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || path == dir {
			return nil
		}
		if n++; n > maxWalk {
			return filepath.SkipAll
		}
		if oc, err := keyed(filepath.Join(path, "memory.oom_control")); err == nil {
			total += oc["oom_kill"]
		}
		return nil
	})
	return total, nil
}

// readCPU reads the cpu controller: limit, usage and throttling.
func (c *Cgroup) readCPU() (*CPUStats, error) {
	if c.Version == 2 {
		dir := c.Unified
		st, err := keyed(filepath.Join(dir, "cpu.stat"))
		if err != nil {
			return nil, err
		}
		s := &CPUStats{
			UsageSeconds: float64(st["usage_usec"]) / 1e6, Periods: st["nr_periods"],
			ThrottledPeriods: st["nr_throttled"], ThrottledSeconds: float64(st["throttled_usec"]) / 1e6,
		}
		s.LimitCores = c.minCores(dir, func(d string) (*float64, error) {
			b, err := readFile(filepath.Join(d, "cpu.max"))
			if err != nil {
				return nil, err
			}
			return parseCPUMax(string(bytes.TrimSpace(b)))
		})
		return s, nil
	}
	s := &CPUStats{}
	found := false
	if dir := c.V1[CPUAcct]; dir != "" {
		if ns, err := readUint(filepath.Join(dir, "cpuacct.usage")); err == nil {
			s.UsageSeconds, found = float64(ns)/1e9, true
		}
	}
	if dir := c.V1[CPU]; dir != "" {
		if st, err := keyed(filepath.Join(dir, "cpu.stat")); err == nil {
			s.Periods, s.ThrottledPeriods, found = st["nr_periods"], st["nr_throttled"], true
			s.ThrottledSeconds = float64(st["throttled_time"]) / 1e9
		}
		s.LimitCores = c.minCores(dir, func(d string) (*float64, error) {
			quota, err := readInt(filepath.Join(d, "cpu.cfs_quota_us"))
			if err != nil {
				return nil, err
			}
			period, err := readUint(filepath.Join(d, "cpu.cfs_period_us"))
			if err != nil {
				return nil, err
			}
			if quota < 0 || period == 0 {
				return nil, nil
			}
			cores := float64(quota) / float64(period)
			return &cores, nil
		})
	}
	if !found {
		return nil, errors.New("no cpu or cpuacct controller")
	}
	return s, nil
}

// parseCPUMax reads v2's cpu.max, "QUOTA PERIOD" or "max PERIOD", as cores.
func parseCPUMax(s string) (*float64, error) {
	q, p, ok := strings.Cut(s, " ")
	if !ok {
		p = "100000"
	}
	if q == "max" {
		return nil, nil
	}
	quota, err1 := strconv.ParseUint(q, 10, 64)
	period, err2 := strconv.ParseUint(p, 10, 64)
	if err1 != nil || err2 != nil || period == 0 {
		return nil, fmt.Errorf("cpu.max: bad value %q", s)
	}
	cores := float64(quota) / float64(period)
	return &cores, nil
}

func readInt(path string) (int64, error) {
	b, err := readFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// readPids reads the pids controller.
func (c *Cgroup) readPids() (*PidsStats, error) {
	dir := c.dir(Pids)
	if dir == "" {
		return nil, errors.New("no pids controller")
	}
	cur, err := readUint(filepath.Join(dir, "pids.current"))
	if err != nil {
		return nil, err
	}
	limit, err := c.minOver(dir, "pids.max")
	if err != nil {
		return nil, err
	}
	return &PidsStats{Limit: limit, Current: cur}, nil
}

// readPressure reads the pressure files of the v2 cgroup; nil when there are none.
func (c *Cgroup) readPressure() *Pressure {
	if c == nil || c.Unified == "" {
		return nil
	}
	var p Pressure
	found := false
	for _, r := range []struct {
		file string
		dst  **PSI
	}{{"cpu.pressure", &p.CPU}, {"memory.pressure", &p.Memory}, {"io.pressure", &p.IO}} {
		b, err := readFile(filepath.Join(c.Unified, r.file))
		if err != nil {
			continue
		}
		if psi, err := parsePSI(b); err == nil {
			*r.dst, found = psi, true
		}
	}
	if !found {
		return nil
	}
	return &p
}

// ancestors lists dir and the directories above it up to its hierarchy's mount point.
func (c *Cgroup) ancestors(dir string) []string {
	mount := c.mounts[dir]
	out := []string{dir}
	if mount == "" {
		return out
	}
	for d := dir; d != mount && strings.HasPrefix(d, mount+"/"); {
		d = filepath.Dir(d)
		out = append(out, d)
	}
	return out
}

// minOver reads a "max"-or-number limit file in dir and its ancestors and returns the lowest:
// the limit that holds. A file missing in an ancestor (the hierarchy's root has none) is skipped;
// missing in dir itself is an error.
func (c *Cgroup) minOver(dir, file string) (*uint64, error) {
	var low *uint64
	for i, d := range c.ancestors(dir) {
		v, err := readMax(filepath.Join(d, file))
		if err != nil {
			if i == 0 {
				return nil, err
			}
			continue
		}
		if v != nil && (low == nil || *v < *low) {
			low = v
		}
	}
	return low, nil
}

// minCores is minOver for cpu limits, read by read in each directory.
func (c *Cgroup) minCores(dir string, read func(string) (*float64, error)) *float64 {
	var low *float64
	for _, d := range c.ancestors(dir) {
		v, err := read(d)
		if err != nil || v == nil {
			continue
		}
		if low == nil || *v < *low {
			low = v
		}
	}
	if low != nil && (math.IsInf(*low, 0) || math.IsNaN(*low)) {
		return nil
	}
	return low
}

package stats

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gaffer/cgroup"
)

// Container is the container's cgroup in a Snapshot: its limits and usage as cgroup.Stats reads
// them (a nil limit is unlimited), and the cpu it used since the last collection.
type Container struct {
	cgroup.Stats
	// CPUPercent is the cgroup's cpu use since the last collection (since the Collector was made,
	// the first time): 100 = one cpu.
	CPUPercent float64 `json:"cpu_percent"`
}

// containerState is what the Collector keeps of the container's cgroup between collections.
// Only the goroutine running a collection touches it.
type containerState struct {
	cg       *cgroup.Cgroup // nil: none found, nothing is read
	lastCPU  float64        // usage_seconds at lastTime
	lastTime time.Time
}

// init finds gaffer's cgroup. It runs when the Collector is made, before `gaffer up` may move
// itself into a leaf cgroup (cgroup v2 with per-process limits): the container is the cgroup
// gaffer started in.
func (s *containerState) init(now time.Time) {
	cg, err := cgroup.Self()
	if err != nil {
		return
	}
	s.use(cg, now)
}

// use reads cg from now on (tests give fixture directories).
func (s *containerState) use(cg *cgroup.Cgroup, now time.Time) {
	s.cg, s.lastCPU, s.lastTime = cg, cpuUsage(cg), now
}

// cpuUsage returns the cpu seconds cg has used, as cgroup.Read's CPU.UsageSeconds, 0 when they
// cannot be read. It reads the one file that holds them (cpu.stat on v2, cpuacct.usage on v1):
// gaffer as PID 1 makes its Collector before it starts the child, and cgroup.Read reads a dozen
// files for this baseline (0.23 ms of NewCollector's 0.29 ms on this VM).
func cpuUsage(cg *cgroup.Cgroup) float64 {
	if cg.Version == 2 {
		b, err := readSmall(filepath.Join(cg.Unified, "cpu.stat"))
		if err != nil {
			return 0
		}
		for line := range bytes.Lines(b) {
			k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
			if !ok || string(k) != "usage_usec" {
				continue
			}
			if n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64); err == nil {
				return float64(n) / 1e6
			}
		}
		return 0
	}
	dir := cg.V1[cgroup.CPUAcct]
	if dir == "" {
		return 0
	}
	b, err := readSmall(filepath.Join(dir, "cpuacct.usage"))
	if err != nil {
		return 0
	}
	ns, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0
	}
	return float64(ns) / 1e9
}

// readSmall reads a cgroupfs file of at most 4 KiB.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4<<10))
}

// read reads the container's cgroup into snap, and the cgroups of the processes that have their
// own (by name: the cgroups gaffer made are named after the process).
func (s *containerState) read(snap *Snapshot) {
	if s.cg == nil {
		return
	}
	snap.Container = s.readContainer(snap.Time)
	made := s.cg.Made()
	if len(made) == 0 {
		return
	}
	for i := range snap.Processes {
		if cg := made[snap.Processes[i].Name]; cg != nil {
			if m, err := cg.ReadMemory(); err == nil {
				snap.Processes[i].Memory = m
			}
		}
	}
}

// readContainer reads the container's cgroup at now; nil when nothing could be read.
func (s *containerState) readContainer(now time.Time) *Container {
	st, err := s.cg.Read()
	if err != nil {
		return nil
	}
	c := &Container{Stats: *st}
	if st.CPU != nil {
		if dt := now.Sub(s.lastTime).Seconds(); dt > 0 && st.CPU.UsageSeconds >= s.lastCPU {
			c.CPUPercent = 100 * (st.CPU.UsageSeconds - s.lastCPU) / dt
		}
		s.lastCPU, s.lastTime = st.CPU.UsageSeconds, now
	}
	return c
}

// UseCgroup makes the Collector read cg as the container's cgroup instead of the one it found
// (nil: none). Call it before the first Snapshot.
func (c *Collector) UseCgroup(cg *cgroup.Cgroup) {
	if cg == nil {
		c.container = containerState{}
		return
	}
	c.container.use(cg, c.now())
}

// Package stats measures processes from /proc, the files and fields gopsutil (the seed's psutil)
// reads: cpu, memory, threads, fds, io and context switches, for one process and summed over its
// descendants; the machine's memory comes from gopsutil. Results are cached for a short time and
// every collection is bounded in time, so that clients asking often never make PID 1 busy.
package stats

import (
	"time"

	"gaffer/cgroup"
)

// Proc is what one process (or a tree, summed) costs.
type Proc struct {
	CPUPercent    float64 `json:"cpu_percent"` // 100 = one cpu; since the last collection, or the first time since start
	CPUUserS      float64 `json:"cpu_user_s"`
	CPUSystemS    float64 `json:"cpu_system_s"`
	CPUChildrenS  float64 `json:"cpu_children_s"` // user + system of exited children it waited for
	MemoryRSS     uint64  `json:"memory_rss"`
	MemoryVMS     uint64  `json:"memory_vms"`
	MemoryPercent float64 `json:"memory_percent"`
	NumThreads    int32   `json:"num_threads"`
	NumFDs        int32   `json:"num_fds"`
	IOReadBytes   uint64  `json:"io_read_bytes"`
	IOWriteBytes  uint64  `json:"io_write_bytes"`
	CtxSwitches   int64   `json:"ctx_switches"` // voluntary + involuntary
}

// Entry is one named process: its own numbers, and the sum over it and all its descendants.
type Entry struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
	Proc
	Tree  Proc `json:"tree"`
	Procs int  `json:"tree_processes"` // how many processes the tree holds
	// Memory is the process's own cgroup (memory_max and the other limits give it one): the
	// exact usage of it and of all it forked; nil without one.
	Memory *cgroup.MemoryStats `json:"cgroup_memory,omitempty"`
}

// Snapshot is one collection: every named process, their totals, and gaffer itself.
type Snapshot struct {
	Time      time.Time `json:"time"`
	Processes []Entry   `json:"processes"`
	Total     Proc      `json:"total"` // sum of the trees of every named process, each process once
	Gaffer    Proc      `json:"gaffer"`
	// Container is the container's cgroup: limits, usage, OOM kills, pressure; nil when gaffer
	// found none.
	Container *Container `json:"container"`
}

package cli

import (
	"testing"

	"gaffer/cgroup"
	"gaffer/stats"
)

func TestContainerLine(t *testing.T) {
	limit, pids, cores := uint64(256<<20), uint64(100), 0.5
	full := &stats.Container{Stats: cgroup.Stats{
		Version: 2,
		Memory:  &cgroup.MemoryStats{LimitBytes: &limit, UsageBytes: 250 << 20, WorkingSetBytes: 200 << 20, OOMKills: 2},
		CPU:     &cgroup.CPUStats{LimitCores: &cores, Periods: 100, ThrottledPeriods: 7, ThrottledSeconds: 0.75},
		Pids:    &cgroup.PidsStats{Limit: &pids, Current: 14},
	}, CPUPercent: 35}
	unlimited := &stats.Container{Stats: cgroup.Stats{
		Version: 1,
		Memory:  &cgroup.MemoryStats{UsageBytes: 250 << 20, WorkingSetBytes: 200 << 20},
		CPU:     &cgroup.CPUStats{},
	}, CPUPercent: 12.5}
	for _, tc := range []struct {
		c    *stats.Container
		want string
	}{
		{full, "container (cgroup v2): memory 200.0M of 256.0M (78.1%), cpu 35.0% of 0.5 cpus (70.0%), throttled in 7 of 100 periods (0.8s), pids 14 of 100 (14.0%), 2 OOM kills"},
		{unlimited, "container (cgroup v1): memory 200.0M (no limit), cpu 12.5% (no limit)"},
		{nil, ""},
	} {
		if got := containerLine(tc.c); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

func TestMemoryWarning(t *testing.T) {
	limit := uint64(256 << 20)
	c := &stats.Container{Stats: cgroup.Stats{Memory: &cgroup.MemoryStats{LimitBytes: &limit, WorkingSetBytes: 230 << 20}}}
	if got := memoryWarning(c); got != "" {
		t.Errorf("at 89.8%%: %q, want nothing", got)
	}
	c.Memory.WorkingSetBytes = 240 << 20
	if got, want := memoryWarning(c), "warning: the container uses 94% of its memory limit (working set 240.0M of 256.0M): the OOM killer is near"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	c.Memory.LimitBytes = nil
	if got := memoryWarning(c); got != "" {
		t.Errorf("without a limit: %q", got)
	}
	if got := memoryWarning(nil); got != "" {
		t.Errorf("without a cgroup: %q", got)
	}
}

package api

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"gaffer/cgroup"
	"gaffer/core"
	"gaffer/stats"
)

// containerSnapshot is metricsInput's snapshot with a container: a memory limit, no cpu limit,
// pids, and pressure (cpu without a full line, as before Linux 5.13).
func containerSnapshot() (core.Info, []core.Process, stats.Snapshot) {
	info, procs, snap := metricsInput()
	limit, swap, pids := uint64(256<<20), uint64(0), uint64(100)
	snap.Container = &stats.Container{Stats: cgroup.Stats{
		Version: 2, Path: "/",
		Memory: &cgroup.MemoryStats{LimitBytes: &limit, UsageBytes: 250 << 20, WorkingSetBytes: 240 << 20, SwapBytes: &swap, OOMKills: 2},
		CPU:    &cgroup.CPUStats{UsageSeconds: 12.5, Periods: 100, ThrottledPeriods: 7, ThrottledSeconds: 0.75},
		Pids:   &cgroup.PidsStats{Limit: &pids, Current: 14},
		Pressure: &cgroup.Pressure{
			CPU:    &cgroup.PSI{Some: cgroup.PSILine{Avg10: 12, Avg60: 7.5, TotalSeconds: 98.5}},
			Memory: &cgroup.PSI{Some: cgroup.PSILine{Avg10: 1.5, TotalSeconds: 1.25}, Full: &cgroup.PSILine{Avg10: 0.5, TotalSeconds: 0.5}},
		},
	}, CPUPercent: 35}
	procs[0].OOMKills = 2
	return info, procs, snap
}

func TestWriteMetricsContainer(t *testing.T) {
	info, procs, snap := containerSnapshot()
	var b bytes.Buffer
	if err := WriteMetrics(&b, info, procs, snap); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"gaffer_container_memory_limit_bytes 268435456\n",
		"gaffer_container_memory_usage_bytes 262144000\n",
		"gaffer_container_memory_working_set_bytes 251658240\n",
		"gaffer_container_memory_swap_bytes 0\n",
		"# TYPE gaffer_container_oom_kills_total counter\ngaffer_container_oom_kills_total 2\n",
		"gaffer_container_cpu_limit_cores +Inf\n",
		"gaffer_container_cpu_usage_seconds_total 12.5\n",
		"gaffer_container_cpu_periods_total 100\n",
		"gaffer_container_cpu_throttled_periods_total 7\n",
		"gaffer_container_cpu_throttled_seconds_total 0.75\n",
		"gaffer_container_pids 14\n",
		"gaffer_container_pids_limit 100\n",
		`gaffer_container_pressure_seconds_total{resource="cpu",kind="some"} 98.5` + "\n",
		`gaffer_container_pressure_seconds_total{resource="memory",kind="full"} 0.5` + "\n",
		`gaffer_container_pressure_ratio{resource="cpu",kind="some",window="10s"} 0.12` + "\n",
		`gaffer_container_pressure_ratio{resource="memory",kind="full",window="60s"} 0` + "\n",
		`gaffer_process_oom_kills_total{name="web.1",group="web",replica="1"} 2` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	for _, absent := range []string{`resource="cpu",kind="full"`, `resource="io"`} {
		if strings.Contains(got, absent) {
			t.Errorf("%s is there, but was not read:\n%s", absent, got)
		}
	}

	// No limits: +Inf, never 0 or the kernel's huge number.
	snap.Container.Memory.LimitBytes, snap.Container.Pids.Limit, snap.Container.Pressure = nil, nil, nil
	b.Reset()
	if err := WriteMetrics(&b, info, procs, snap); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gaffer_container_memory_limit_bytes +Inf\n", "gaffer_container_pids_limit +Inf\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "pressure") {
		t.Errorf("pressure families without pressure:\n%s", b.String())
	}
}

func TestWriteMetricsContainerPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is missing (Debian package prometheus); TestWriteMetricsPromtool fails in CI")
	}
	info, procs, snap := containerSnapshot()
	var b bytes.Buffer
	if err := WriteMetrics(&b, info, procs, snap); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

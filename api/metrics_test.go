package api

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gaffer/core"
	"gaffer/stats"
)

// metricsInput is a fixed gaffer: web with two instances (one ready, one starting), a worker that
// exited, and a snapshot that measured web.1, web.2 and, before it restarted, the worker.
func metricsInput() (core.Info, []core.Process, stats.Snapshot) {
	one, zero := 1, 0
	info := core.Info{
		Version: "1.2.3", Pid: 1, Mode: "up", UptimeS: 12.5, ZombiesReaped: 3, Reaped: 10,
		Processes: map[string]int{"ready": 1, "starting": 1, "exited": 1, "total": 3},
	}
	procs := []core.Process{
		{Name: "web.1", Group: "web", Instance: 1, Pid: 100, State: "ready", Restarts: 2, ExitCode: &zero, Ready: true, Health: core.HealthHealthy, HealthChecksFailed: 2},
		{Name: "web.2", Group: "web", Instance: 2, Pid: 101, State: "starting", Health: core.HealthUnhealthy, HealthFailures: 3, HealthChecksFailed: 3},
		{Name: "worker", Group: "worker", Instance: 0, Pid: 0, State: "exited", Restarts: 5, ExitCode: &one},
	}
	snap := stats.Snapshot{
		Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Processes: []stats.Entry{
			{Name: "web.1", Pid: 100, Proc: stats.Proc{CPUUserS: 1, MemoryRSS: 1000, NumFDs: 3, NumThreads: 1},
				Tree: stats.Proc{CPUUserS: 1.25, CPUSystemS: 0.5, CPUChildrenS: 0.25, MemoryRSS: 3 << 20, NumFDs: 9, NumThreads: 4}, Procs: 3},
			{Name: "web.2", Pid: 101, Proc: stats.Proc{MemoryRSS: 2000}, Tree: stats.Proc{MemoryRSS: 2000, NumFDs: 3, NumThreads: 1}, Procs: 1},
			{Name: "worker", Pid: 99, Tree: stats.Proc{CPUUserS: 7, MemoryRSS: 5000, NumFDs: 4, NumThreads: 2}, Procs: 1},
		},
		Gaffer: stats.Proc{CPUUserS: 0.02, CPUSystemS: 0.01, MemoryRSS: 4 << 20, NumFDs: 7, NumThreads: 5},
	}
	return info, procs, snap
}

const wantMetrics = `# HELP gaffer_build_info gaffer's version, in the label version; always 1.
# TYPE gaffer_build_info gauge
gaffer_build_info{version="1.2.3"} 1
# HELP gaffer_uptime_seconds Seconds since gaffer started.
# TYPE gaffer_uptime_seconds gauge
gaffer_uptime_seconds 12.5
# HELP gaffer_reaped_total Children gaffer reaped: the processes it started and orphans.
# TYPE gaffer_reaped_total counter
gaffer_reaped_total 10
# HELP gaffer_zombies_reaped_total Orphans gaffer reaped that it had not started.
# TYPE gaffer_zombies_reaped_total counter
gaffer_zombies_reaped_total 3
# HELP gaffer_output_dropped_bytes_total Bytes of relayed output and events gaffer could not write: its stdout or stderr was blocked or closed.
# TYPE gaffer_output_dropped_bytes_total counter
gaffer_output_dropped_bytes_total 0
# HELP gaffer_draining Whether gaffer is draining (1): not ready while its processes still run, before it stops them.
# TYPE gaffer_draining gauge
gaffer_draining 0
# HELP gaffer_processes Processes by state.
# TYPE gaffer_processes gauge
gaffer_processes{state="exited"} 1
gaffer_processes{state="ready"} 1
gaffer_processes{state="starting"} 1
# HELP gaffer_process_cpu_seconds_total User and system cpu time of gaffer itself.
# TYPE gaffer_process_cpu_seconds_total counter
gaffer_process_cpu_seconds_total 0.03
# HELP gaffer_process_resident_memory_bytes Resident memory of gaffer itself.
# TYPE gaffer_process_resident_memory_bytes gauge
gaffer_process_resident_memory_bytes 4194304
# HELP gaffer_process_open_fds Open file descriptors of gaffer itself.
# TYPE gaffer_process_open_fds gauge
gaffer_process_open_fds 7
# HELP gaffer_up Whether the process is running (1) or not (0).
# TYPE gaffer_up gauge
gaffer_up{name="web.1",group="web",replica="1"} 1
gaffer_up{name="web.2",group="web",replica="2"} 1
gaffer_up{name="worker",group="worker",replica="0"} 0
# HELP gaffer_ready Whether the process is ready (1) or not (0).
# TYPE gaffer_ready gauge
gaffer_ready{name="web.1",group="web",replica="1"} 1
gaffer_ready{name="web.2",group="web",replica="2"} 0
gaffer_ready{name="worker",group="worker",replica="0"} 0
# HELP gaffer_restarts_total Times gaffer restarted the process.
# TYPE gaffer_restarts_total counter
gaffer_restarts_total{name="web.1",group="web",replica="1"} 2
gaffer_restarts_total{name="web.2",group="web",replica="2"} 0
gaffer_restarts_total{name="worker",group="worker",replica="0"} 5
# HELP gaffer_process_oom_kills_total OOM kills gaffer saw in the process's tree: of the process itself, or of a process it forked.
# TYPE gaffer_process_oom_kills_total counter
gaffer_process_oom_kills_total{name="web.1",group="web",replica="1"} 0
gaffer_process_oom_kills_total{name="web.2",group="web",replica="2"} 0
gaffer_process_oom_kills_total{name="worker",group="worker",replica="0"} 0
# HELP gaffer_exit_code Exit code of the process's last exit; -1 before the first.
# TYPE gaffer_exit_code gauge
gaffer_exit_code{name="web.1",group="web",replica="1"} 0
gaffer_exit_code{name="web.2",group="web",replica="2"} -1
gaffer_exit_code{name="worker",group="worker",replica="0"} 1
# HELP gaffer_process_healthy Whether the process's last health check passed (1) or failed (0); only processes with a health check that answered in this run.
# TYPE gaffer_process_healthy gauge
gaffer_process_healthy{name="web.1",group="web",replica="1"} 1
gaffer_process_healthy{name="web.2",group="web",replica="2"} 0
# HELP gaffer_health_checks_failed_total Health checks of the process that failed since gaffer started; only processes with a health check.
# TYPE gaffer_health_checks_failed_total counter
gaffer_health_checks_failed_total{name="web.1",group="web",replica="1"} 2
gaffer_health_checks_failed_total{name="web.2",group="web",replica="2"} 3
# HELP gaffer_cpu_seconds_total User and system cpu time of the process and its descendants, and of the children they waited for.
# TYPE gaffer_cpu_seconds_total counter
gaffer_cpu_seconds_total{name="web.1",group="web",replica="1"} 2
gaffer_cpu_seconds_total{name="web.2",group="web",replica="2"} 0
# HELP gaffer_memory_rss_bytes Resident memory of the process and its descendants.
# TYPE gaffer_memory_rss_bytes gauge
gaffer_memory_rss_bytes{name="web.1",group="web",replica="1"} 3145728
gaffer_memory_rss_bytes{name="web.2",group="web",replica="2"} 2000
# HELP gaffer_open_fds Open file descriptors of the process and its descendants.
# TYPE gaffer_open_fds gauge
gaffer_open_fds{name="web.1",group="web",replica="1"} 9
gaffer_open_fds{name="web.2",group="web",replica="2"} 3
# HELP gaffer_threads Threads of the process and its descendants.
# TYPE gaffer_threads gauge
gaffer_threads{name="web.1",group="web",replica="1"} 4
gaffer_threads{name="web.2",group="web",replica="2"} 1
`

func TestWriteMetrics(t *testing.T) {
	info, procs, snap := metricsInput()
	var b bytes.Buffer
	if err := WriteMetrics(&b, info, procs, snap); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != wantMetrics {
		t.Errorf("got:\n%s\nwant:\n%s", got, wantMetrics)
	}
}

func TestWriteMetricsWithoutStats(t *testing.T) {
	info, procs, _ := metricsInput()
	var b bytes.Buffer
	if err := WriteMetrics(&b, info, procs, stats.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, absent := range []string{"gaffer_process_cpu", "gaffer_process_resident", "gaffer_process_open_fds", "gaffer_cpu_seconds_total", "gaffer_memory_rss_bytes", "gaffer_open_fds", "gaffer_threads"} {
		if strings.Contains(got, absent) {
			t.Errorf("no stats, yet %s is there:\n%s", absent, got)
		}
	}
	for _, present := range []string{"gaffer_up{", "gaffer_restarts_total{", "gaffer_build_info{"} {
		if !strings.Contains(got, present) {
			t.Errorf("%s is missing:\n%s", present, got)
		}
	}
}

// TestWriteMetricsHealth: a process whose check has not answered yet (unknown) has a failed-checks
// counter but no healthy sample; without any health check neither family is written; draining is 1.
func TestWriteMetricsHealth(t *testing.T) {
	procs := []core.Process{
		{Name: "a", Group: "a", Pid: 5, Health: core.HealthUnknown, HealthChecksFailed: 7},
		{Name: "b", Group: "b", Pid: 6},
	}
	var b bytes.Buffer
	if err := WriteMetrics(&b, core.Info{Draining: true}, procs, stats.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{"\ngaffer_draining 1\n", "\n" + `gaffer_health_checks_failed_total{name="a",group="a",replica="0"} 7` + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "gaffer_process_healthy") || strings.Contains(got, `gaffer_health_checks_failed_total{name="b"`) {
		t.Errorf("health samples of a process without a result or without a check:\n%s", got)
	}
	b.Reset()
	if err := WriteMetrics(&b, core.Info{}, procs[1:], stats.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); strings.Contains(got, "gaffer_process_healthy") || strings.Contains(got, "gaffer_health_checks_failed_total") {
		t.Errorf("health families without any health check:\n%s", got)
	}
}

func TestWriteMetricsEscaping(t *testing.T) {
	procs := []core.Process{{Name: "a\"b\\c\nd", Group: "g\xff", Instance: 1, Pid: 5}}
	var b bytes.Buffer
	if err := WriteMetrics(&b, core.Info{Version: `v"1\2`}, procs, stats.Snapshot{}); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		`gaffer_build_info{version="v\"1\\2"} 1` + "\n",
		`gaffer_up{name="a\"b\\c\nd",group="g` + "\uFFFD" + `",replica="1"} 1` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	// HELP text escapes backslash and newline, not the double quote.
	if got, want := string(appendMetricEscaped(nil, "a\"b\\c\nd", false)), `a"b\\c\nd`; got != want {
		t.Errorf("help escaping: got %q, want %q", got, want)
	}
}

func TestAppendMetricValue(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", -1: "-1", 12.5: "12.5", 1 << 40: "1099511627776", 0.001: "0.001",
	} {
		if got := string(appendMetricValue(nil, v)); got != want {
			t.Errorf("appendMetricValue(%v) = %q, want %q", v, got, want)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteMetricsWriteError(t *testing.T) {
	info, procs, snap := metricsInput()
	if err := WriteMetrics(failingWriter{}, info, procs, snap); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("err = %v, want the writer's error wrapped", err)
	}
}

// TestWriteMetricsPromtool checks the output with promtool (Debian: apt-get install prometheus).
// It skips when promtool is missing, except in CI (CI=true), where it fails.
func TestWriteMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing (Debian package prometheus)")
		}
		t.Skip("promtool is missing (Debian package prometheus)")
	}
	info, procs, snap := metricsInput()
	procs = append(procs, core.Process{Name: "odd \"name\"\\\n", Group: "odd", Instance: 3, Pid: 7})
	for name, s := range map[string]stats.Snapshot{"with stats": snap, "without stats": {}} {
		var b bytes.Buffer
		if err := WriteMetrics(&b, info, procs, s); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = &b
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("%s: promtool check metrics: %v\n%s", name, err, out)
		}
	}
}

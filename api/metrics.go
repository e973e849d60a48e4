package api

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"gaffer/cgroup"
	"gaffer/core"
	"gaffer/stats"
)

// MetricsContentType is the Content-Type of what WriteMetrics writes.
const MetricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// procMetric is one per-process metric family of GET /metrics.
type procMetric struct {
	name, typ, help string
	// value returns the sample of p, which e measured (nil when it is not running or was not
	// measured); ok false leaves p out of the family.
	value func(p *core.Process, e *stats.Entry) (v float64, ok bool)
}

// WriteMetrics writes gaffer's metrics in the Prometheus text exposition format 0.0.4 (content
// type MetricsContentType) to w: gaffer's version, uptime, reaping counters and process counts by
// state; for every process in procs, labelled with name (instance name), group and replica (the instance number: Prometheus keeps "instance" for the scrape target), whether
// it runs and is ready, its restarts and last exit code, and, from snap, the cpu time, resident
// memory, open fds and threads of it and its descendants; and gaffer's own cpu time, memory and
// fds from snap. A zero snap (no stats) leaves out the resource metrics. The text is built in
// memory and written with one Write.
func WriteMetrics(w io.Writer, info core.Info, procs []core.Process, snap stats.Snapshot) error {
	var b []byte
	b = metricFamily(b, "gaffer_build_info", "gauge", "gaffer's version, in the label version; always 1.")
	b = metricSample(b, "gaffer_build_info", 1, "version", info.Version)
	b = metricFamily(b, "gaffer_uptime_seconds", "gauge", "Seconds since gaffer started.")
	b = metricSample(b, "gaffer_uptime_seconds", info.UptimeS)
	b = metricFamily(b, "gaffer_reaped_total", "counter", "Children gaffer reaped: the processes it started and orphans.")
	b = metricSample(b, "gaffer_reaped_total", float64(info.Reaped))
	b = metricFamily(b, "gaffer_zombies_reaped_total", "counter", "Orphans gaffer reaped that it had not started.")
	b = metricSample(b, "gaffer_zombies_reaped_total", float64(info.ZombiesReaped))
	b = metricFamily(b, "gaffer_output_dropped_bytes_total", "counter", "Bytes of relayed output and events gaffer could not write: its stdout or stderr was blocked or closed.")
	b = metricSample(b, "gaffer_output_dropped_bytes_total", float64(info.OutputDroppedBytes))
	b = metricFamily(b, "gaffer_draining", "gauge", "Whether gaffer is draining (1): not ready while its processes still run, before it stops them.")
	b = metricSample(b, "gaffer_draining", metric01(info.Draining))
	if states := slices.Sorted(maps.Keys(info.Processes)); len(states) > 0 {
		b = metricFamily(b, "gaffer_processes", "gauge", "Processes by state.")
		for _, state := range states {
			if state != "total" { // the sum over the states, for PromQL to make
				b = metricSample(b, "gaffer_processes", float64(info.Processes[state]), "state", state)
			}
		}
	}

	measured := !snap.Time.IsZero()
	if measured {
		g := &snap.Gaffer
		b = metricFamily(b, "gaffer_process_cpu_seconds_total", "counter", "User and system cpu time of gaffer itself.")
		b = metricSample(b, "gaffer_process_cpu_seconds_total", g.CPUUserS+g.CPUSystemS)
		b = metricFamily(b, "gaffer_process_resident_memory_bytes", "gauge", "Resident memory of gaffer itself.")
		b = metricSample(b, "gaffer_process_resident_memory_bytes", float64(g.MemoryRSS))
		b = metricFamily(b, "gaffer_process_open_fds", "gauge", "Open file descriptors of gaffer itself.")
		b = metricSample(b, "gaffer_process_open_fds", float64(g.NumFDs))
	}

	if measured && snap.Container != nil {
		b = appendContainer(b, snap.Container)
	}

	// The measurement of each process: same name and same pid, so that a snapshot taken before a
	// restart is not shown for the new process.
	entries := make([]*stats.Entry, len(procs))
	if measured {
		byName := make(map[string]*stats.Entry, len(snap.Processes))
		for i := range snap.Processes {
			byName[snap.Processes[i].Name] = &snap.Processes[i]
		}
		for i := range procs {
			if e := byName[procs[i].Name]; e != nil && procs[i].Pid > 0 && e.Pid == procs[i].Pid {
				entries[i] = e
			}
		}
	}

	// The per-process families, in the order they are written. Resource metrics are the sums over
	// the process and its descendants (stats.Entry.Tree), written only for processes that run and
	// were measured: a process that is not running has up 0 and no resource samples.
	metrics := [...]procMetric{
		{"gaffer_up", "gauge", "Whether the process is running (1) or not (0).",
			func(p *core.Process, _ *stats.Entry) (float64, bool) { return metric01(p.Pid > 0), true }},
		{"gaffer_ready", "gauge", "Whether the process is ready (1) or not (0).",
			func(p *core.Process, _ *stats.Entry) (float64, bool) { return metric01(p.Ready), true }},
		{"gaffer_restarts_total", "counter", "Times gaffer restarted the process.",
			func(p *core.Process, _ *stats.Entry) (float64, bool) { return float64(p.Restarts), true }},
		{"gaffer_process_oom_kills_total", "counter", "OOM kills gaffer saw in the process's tree: of the process itself, or of a process it forked.",
			func(p *core.Process, _ *stats.Entry) (float64, bool) { return float64(p.OOMKills), true }},
		{"gaffer_exit_code", "gauge", "Exit code of the process's last exit; -1 before the first.",
			func(p *core.Process, _ *stats.Entry) (float64, bool) {
				if p.ExitCode == nil {
					return -1, true
				}
				return float64(*p.ExitCode), true
			}},
		// Only once a check has answered in this run: "unknown" (no result yet) is no sample, so
		// that a restart does not read as a failure.
		{"gaffer_process_healthy", "gauge", "Whether the process's last health check passed (1) or failed (0); only processes with a health check that answered in this run.",
			func(p *core.Process, _ *stats.Entry) (float64, bool) {
				switch p.Health {
				case core.HealthHealthy:
					return 1, true
				case core.HealthUnhealthy:
					return 0, true
				}
				return 0, false
			}},
		{"gaffer_health_checks_failed_total", "counter", "Health checks of the process that failed since gaffer started; only processes with a health check.",
			func(p *core.Process, _ *stats.Entry) (float64, bool) {
				return float64(p.HealthChecksFailed), p.Health != ""
			}},
		// With the children they waited for: a descendant that exits and is reaped in the tree
		// keeps its cpu time there, so the counter does not drop (which would read as a reset).
		{"gaffer_cpu_seconds_total", "counter", "User and system cpu time of the process and its descendants, and of the children they waited for.",
			func(_ *core.Process, e *stats.Entry) (float64, bool) {
				if e == nil {
					return 0, false
				}
				return e.Tree.CPUUserS + e.Tree.CPUSystemS + e.Tree.CPUChildrenS, true
			}},
		{"gaffer_memory_rss_bytes", "gauge", "Resident memory of the process and its descendants.",
			func(_ *core.Process, e *stats.Entry) (float64, bool) {
				if e == nil {
					return 0, false
				}
				return float64(e.Tree.MemoryRSS), true
			}},
		{"gaffer_open_fds", "gauge", "Open file descriptors of the process and its descendants.",
			func(_ *core.Process, e *stats.Entry) (float64, bool) {
				if e == nil {
					return 0, false
				}
				return float64(e.Tree.NumFDs), true
			}},
		{"gaffer_threads", "gauge", "Threads of the process and its descendants.",
			func(_ *core.Process, e *stats.Entry) (float64, bool) {
				if e == nil {
					return 0, false
				}
				return float64(e.Tree.NumThreads), true
			}},
	}
	for _, m := range &metrics {
		header := false
		for i := range procs {
			p := &procs[i]
			v, ok := m.value(p, entries[i])
			if !ok {
				continue
			}
			if !header {
				b = metricFamily(b, m.name, m.typ, m.help)
				header = true
			}
			b = metricSample(b, m.name, v, "name", p.Name, "group", p.Group, "replica", strconv.Itoa(p.Instance))
		}
	}

	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("cannot write metrics: %w", err)
	}
	return nil
}

// appendContainer appends the container's cgroup: limits (+Inf when there is none), usage,
// OOM kills, cpu throttling, pids and pressure, each family only when its controller was read.
func appendContainer(b []byte, c *stats.Container) []byte {
	one := func(name, typ, help string, v float64) {
		b = metricFamily(b, name, typ, help)
		b = metricSample(b, name, v)
	}
	if m := c.Memory; m != nil {
		one("gaffer_container_memory_limit_bytes", "gauge", "Memory limit of the container's cgroup (the lowest on the way up); +Inf when there is none.", limitValue(m.LimitBytes))
		one("gaffer_container_memory_usage_bytes", "gauge", "Memory the container's cgroup uses, page cache included.", float64(m.UsageBytes))
		one("gaffer_container_memory_working_set_bytes", "gauge", "Memory usage less inactive file pages, as the kubelet computes it.", float64(m.WorkingSetBytes))
		if m.SwapBytes != nil {
			one("gaffer_container_memory_swap_bytes", "gauge", "Swap the container's cgroup uses.", float64(*m.SwapBytes))
		}
		one("gaffer_container_oom_kills_total", "counter", "Processes the OOM killer killed in the container's cgroup.", float64(m.OOMKills))
	}
	if cpu := c.CPU; cpu != nil {
		limit := math.Inf(1)
		if cpu.LimitCores != nil {
			limit = *cpu.LimitCores
		}
		one("gaffer_container_cpu_limit_cores", "gauge", "CPU limit of the container's cgroup, in cpus (quota / period); +Inf when there is none.", limit)
		one("gaffer_container_cpu_usage_seconds_total", "counter", "CPU time the container's cgroup used.", cpu.UsageSeconds)
		one("gaffer_container_cpu_periods_total", "counter", "CPU enforcement periods in which the container's cgroup had runnable tasks.", float64(cpu.Periods))
		one("gaffer_container_cpu_throttled_periods_total", "counter", "Enforcement periods in which the container's cgroup used up its quota.", float64(cpu.ThrottledPeriods))
		one("gaffer_container_cpu_throttled_seconds_total", "counter", "Time the container's cgroup was throttled.", cpu.ThrottledSeconds)
	}
	if p := c.Pids; p != nil {
		one("gaffer_container_pids", "gauge", "Processes and threads in the container's cgroup.", float64(p.Current))
		one("gaffer_container_pids_limit", "gauge", "Limit on processes and threads of the container's cgroup; +Inf when there is none.", limitValue(p.Limit))
	}
	if pr := c.Pressure; pr != nil {
		type psiLine struct {
			resource, kind string
			l              *cgroup.PSILine
		}
		var lines []psiLine
		for _, r := range []struct {
			resource string
			p        *cgroup.PSI
		}{{"cpu", pr.CPU}, {"memory", pr.Memory}, {"io", pr.IO}} {
			if r.p == nil {
				continue
			}
			lines = append(lines, psiLine{r.resource, "some", &r.p.Some})
			if r.p.Full != nil {
				lines = append(lines, psiLine{r.resource, "full", r.p.Full})
			}
		}
		b = metricFamily(b, "gaffer_container_pressure_seconds_total", "counter", "Time some (or all: full) runnable tasks of the container's cgroup were stalled on the resource (pressure stall information).")
		for _, l := range lines {
			b = metricSample(b, "gaffer_container_pressure_seconds_total", l.l.TotalSeconds, "resource", l.resource, "kind", l.kind)
		}
		b = metricFamily(b, "gaffer_container_pressure_ratio", "gauge", "Share of time some (or all: full) runnable tasks of the container's cgroup were stalled on the resource, averaged over window.")
		for _, l := range lines {
			b = metricSample(b, "gaffer_container_pressure_ratio", l.l.Avg10/100, "resource", l.resource, "kind", l.kind, "window", "10s")
			b = metricSample(b, "gaffer_container_pressure_ratio", l.l.Avg60/100, "resource", l.resource, "kind", l.kind, "window", "60s")
		}
	}
	return b
}

// limitValue is a limit as a sample: +Inf for none.
func limitValue(v *uint64) float64 {
	if v == nil {
		return math.Inf(1)
	}
	return float64(*v)
}

// metricFamily appends the HELP and TYPE lines of a metric family.
func metricFamily(b []byte, name, typ, help string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = appendMetricEscaped(b, help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// metricSample appends one sample line; labels are name, value pairs.
func metricSample(b []byte, name string, v float64, labels ...string) []byte {
	b = append(b, name...)
	if len(labels) > 0 {
		b = append(b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, labels[i]...)
			b = append(b, `="`...)
			b = appendMetricEscaped(b, labels[i+1], true)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendMetricValue(b, v)
	return append(b, '\n')
}

// appendMetricValue appends v as the format wants it: integers without exponent, NaN, +Inf, -Inf.
func appendMetricValue(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendMetricEscaped appends s escaped for the text format: backslash and newline always, the double
// quote too in label values (HELP text keeps it). Invalid UTF-8 becomes U+FFFD, since the format
// is UTF-8.
func appendMetricEscaped(b []byte, s string, label bool) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && label:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// metric01 is 1 for true, 0 for false.
func metric01(v bool) float64 {
	if v {
		return 1
	}
	return 0
}

package stats

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gaffer/cgroup"
)

// TestContainer: a Snapshot carries the container's cgroup, and its cpu use since the last
// collection; JSON shows an unset limit as null.
func TestContainer(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.max", "268435456\n")
	write("memory.current", "241172480\n")
	write("memory.stat", "anon 200000000\ninactive_file 10485760\n")
	write("memory.events", "oom 1\noom_kill 1\n")
	write("cpu.max", "max 100000\n")
	write("cpu.stat", "usage_usec 1000000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n")
	write("pids.max", "max\n")
	write("pids.current", "4\n")

	now := time.Unix(1000, 0)
	c := NewCollector(Options{TTL: -1, Now: func() time.Time { return now }})
	c.UseCgroup(cgroup.V2(dir, dir))
	now = now.Add(2 * time.Second)
	write("cpu.stat", "usage_usec 2000000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n")
	snap := snapshot(t, c, nil)
	ct := snap.Container
	if ct == nil || ct.Memory == nil || ct.CPU == nil || ct.Pids == nil {
		t.Fatalf("container %+v: want memory, cpu and pids", ct)
	}
	if *ct.Memory.LimitBytes != 256<<20 || ct.Memory.WorkingSetBytes != 241172480-10485760 || ct.Memory.OOMKills != 1 {
		t.Errorf("memory %+v", ct.Memory)
	}
	if ct.CPUPercent != 50 {
		t.Errorf("cpu_percent %v, want 50 (1 s of cpu in 2 s)", ct.CPUPercent)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"container":{"cgroup_version":2,`, `"limit_cores":null`, `"pids":{"limit":null,"current":4}`, `"cpu_percent":50`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s\nwant %s", b, want)
		}
	}

	c.UseCgroup(nil)
	if snap := snapshot(t, c, nil); snap.Container != nil {
		t.Errorf("without a cgroup: container %+v", snap.Container)
	}
	if b, _ := json.Marshal(snapshot(t, c, nil)); !strings.Contains(string(b), `"container":null`) {
		t.Errorf("%s: want container null", b)
	}
}

// TestProcessCgroup: a process with a cgroup of its own (gaffer.NAME below the container's) has
// its exact memory in its entry; one without has none.
func TestProcessCgroup(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"memory.max": "max\n", "memory.current": "100000000\n", "memory.stat": "inactive_file 0\n", "memory.events": "oom_kill 1\n",
		"gaffer.web/memory.max": "33554432\n", "gaffer.web/memory.current": "30000000\n",
		"gaffer.web/memory.stat": "inactive_file 1000000\n", "gaffer.web/memory.events": "oom_kill 1\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	web, other := start(t, "sleep", "100"), start(t, "sleep", "100")
	c := NewCollector(Options{TTL: -1})
	c.UseCgroup(cgroup.V2(dir, dir))
	snap := snapshot(t, c, map[string]int{"web": web.Process.Pid, "other": other.Process.Pid})
	e, ok := snap.Entry("web")
	if !ok || e.Memory == nil || *e.Memory.LimitBytes != 32<<20 || e.Memory.WorkingSetBytes != 29000000 || e.Memory.OOMKills != 1 {
		t.Errorf("web: %+v, want its cgroup's memory", e.Memory)
	}
	if e, _ := snap.Entry("other"); e.Memory != nil {
		t.Errorf("other: %+v, want none", e.Memory)
	}
}

// TestCPUUsageAsRead: the baseline read from one file is cgroup.Read's usage, on v2 and v1, and 0
// when the file is missing.
func TestCPUUsageAsRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("v2/cpu.stat", "usage_usec 1234567\nuser_usec 1000000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n")
	write("v2/cpu.max", "max 100000\n")
	write("v1/cpuacct/cpuacct.usage", "9876543210\n")
	v2 := cgroup.V2(filepath.Join(dir, "v2"), filepath.Join(dir, "v2"))
	v1 := cgroup.V1Dirs(map[string]string{cgroup.CPUAcct: filepath.Join(dir, "v1/cpuacct")},
		map[string]string{cgroup.CPUAcct: filepath.Join(dir, "v1/cpuacct")}, "")
	empty := cgroup.V2(filepath.Join(dir, "none"), filepath.Join(dir, "none"))
	for name, cg := range map[string]*cgroup.Cgroup{"v2": v2, "v1": v1, "none": empty} {
		want := 0.0
		if st, err := cg.Read(); err == nil && st.CPU != nil {
			want = st.CPU.UsageSeconds
		}
		if got := cpuUsage(cg); got != want {
			t.Errorf("%s: cpuUsage %v, cgroup.Read %v", name, got, want)
		}
		if name != "none" && want == 0 {
			t.Errorf("%s: the fixture reads as no usage", name)
		}
	}
}

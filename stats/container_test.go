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

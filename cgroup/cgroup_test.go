package cgroup

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The mountinfo of this machine's hybrid layout (v1 controllers, a v2 hierarchy with hugetlb).
const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name             string
		cgroup, mountinf string
		want             *Cgroup
		err              error
	}{
		{
			name: "hybrid, no namespace",
			cgroup: `9:name=systemd:/
8:pids:/
4:memory:/process_api/53e0
2:cpuacct:/
1:cpu:/
0::/
`,
			mountinf: hybridMountinfo,
			want: &Cgroup{Version: 1, Unified: "/sys/fs/cgroup/unified", Path: "/process_api/53e0", V1: map[string]string{
				"memory": "/sys/fs/cgroup/memory/process_api/53e0", "pids": "/sys/fs/cgroup/pids",
				"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
			}},
		},
		{
			// Docker on v1 shares the host's cgroup namespace and bind-mounts the container's own
			// cgroup of each hierarchy, read-only; cpu and cpuacct share one.
			name: "docker v1: bind mounts of the container's cgroups",
			cgroup: `12:pids:/gaffer-docker-1/0123abcd
4:memory:/gaffer-docker-1/0123abcd
3:cpu,cpuacct:/gaffer-docker-1/0123abcd
0::/
`,
			mountinf: `700 690 0:70 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
701 700 0:29 /gaffer-docker-1/0123abcd /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:11 - cgroup cgroup rw,cpu,cpuacct
702 700 0:32 /gaffer-docker-1/0123abcd /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:15 - cgroup cgroup rw,memory
703 700 0:36 /gaffer-docker-1/0123abcd /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime master:19 - cgroup cgroup rw,pids
704 700 0:38 / /sys/fs/cgroup/unified ro,nosuid,nodev,noexec,relatime master:21 - cgroup2 cgroup2 rw
`,
			want: &Cgroup{Version: 1, Unified: "/sys/fs/cgroup/unified", Path: "/gaffer-docker-1/0123abcd", V1: map[string]string{
				"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids",
				"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
			}},
		},
		{
			name:     "v2 in a private cgroup namespace",
			cgroup:   "0::/\n",
			mountinf: "1125 1110 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot\n",
			want:     &Cgroup{Version: 2, Unified: "/sys/fs/cgroup", Path: "/", V1: map[string]string{}},
		},
		{
			name:     "v2 in the host's cgroup namespace",
			cgroup:   "0::/system.slice/docker-0123.scope\n",
			mountinf: "1125 1110 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n",
			want:     &Cgroup{Version: 2, Unified: "/sys/fs/cgroup/system.slice/docker-0123.scope", Path: "/system.slice/docker-0123.scope", V1: map[string]string{}},
		},
		{
			name:   "v2, the container's cgroup bind-mounted, gaffer moved into its leaf",
			cgroup: "0::/kubepods/pod1/ctr/init\n",
			mountinf: `36 25 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw
900 800 0:30 /kubepods/pod1/ctr /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw
`,
			want: &Cgroup{Version: 2, Unified: "/sys/fs/cgroup/init", Path: "/kubepods/pod1/ctr/init", V1: map[string]string{}},
		},
		{
			name:     "a mount point with a space",
			cgroup:   "0::/a\n",
			mountinf: `36 25 0:30 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw` + "\n",
			want:     &Cgroup{Version: 2, Unified: "/mnt/my cgroups/a", Path: "/a", V1: map[string]string{}},
		},
		{
			// Moved out of the namespace's root by someone else: not ours to read.
			name:     "v2 path outside the namespace",
			cgroup:   "0::/../../system.slice/x.scope\n",
			mountinf: "1125 1110 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup rw\n",
			err:      ErrNone,
		},
		{
			name:     "nothing mounted",
			cgroup:   "0::/\n",
			mountinf: "22 1 0:21 / /proc rw - proc proc rw\n",
			err:      ErrNone,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.cgroup), []byte(tc.mountinf))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.mounts = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// files writes a fixture tree: path (relative to dir) -> content.
func files(t *testing.T, dir string, fs map[string]string) {
	t.Helper()
	for name, content := range fs {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The file formats of a Linux 6.x cgroup v2 directory.
const (
	v2MemoryStat = `anon 201326592
file 67108864
kernel 2097152
kernel_stack 65536
pagetables 425984
sec_pagetables 0
percpu 0
sock 0
vmalloc 0
shmem 0
zswap 0
zswapped 0
file_mapped 1114112
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 201261056
active_anon 65536
inactive_file 50331648
active_file 16777216
unevictable 0
slab_reclaimable 426520
slab_unreclaimable 271080
slab 697600
workingset_refault_anon 0
workingset_refault_file 0
pgscan 0
pgsteal 0
pgfault 51940
pgmajfault 0
thp_fault_alloc 0
`
	v2MemoryEvents = `low 0
high 0
max 41
oom 3
oom_kill 3
oom_group_kill 0
`
	v2CPUStat = `usage_usec 123456789
user_usec 100000000
system_usec 23456789
core_sched.force_idle_usec 0
nr_periods 4500
nr_throttled 120
throttled_usec 9876543
nr_bursts 0
burst_usec 0
`
	v2MemoryPressure = `some avg10=1.53 avg60=0.87 avg300=0.21 total=1234567
full avg10=0.50 avg60=0.25 avg300=0.05 total=456789
`
	// Before Linux 5.13 cpu.pressure had no "full" line.
	v2CPUPressure = "some avg10=12.00 avg60=7.50 avg300=2.10 total=98765432\n"
	v2IOPressure  = `some avg10=0.00 avg60=0.00 avg300=0.00 total=0
full avg10=0.00 avg60=0.00 avg300=0.00 total=0
`
)

func ptr[T any](v T) *T { return &v }

func TestReadV2(t *testing.T) {
	mount := t.TempDir()
	// The limits sit on the pod (the parent), as the kubelet sets them; the container's own
	// files say "max".
	files(t, mount, map[string]string{
		"kubepods/memory.max":              "268435456\n",
		"kubepods/cpu.max":                 "50000 100000\n",
		"kubepods/pids.max":                "max\n",
		"kubepods/ctr/memory.max":          "max\n",
		"kubepods/ctr/memory.current":      "268173312\n",
		"kubepods/ctr/memory.stat":         v2MemoryStat,
		"kubepods/ctr/memory.events":       v2MemoryEvents,
		"kubepods/ctr/memory.swap.current": "0\n",
		"kubepods/ctr/cpu.max":             "max 100000\n",
		"kubepods/ctr/cpu.stat":            v2CPUStat,
		"kubepods/ctr/pids.max":            "100\n",
		"kubepods/ctr/pids.current":        "14\n",
		"kubepods/ctr/memory.pressure":     v2MemoryPressure,
		"kubepods/ctr/cpu.pressure":        v2CPUPressure,
		"kubepods/ctr/io.pressure":         v2IOPressure,
	})
	c := V2(filepath.Join(mount, "kubepods/ctr"), mount)
	got, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		Version: 2, Path: "/kubepods/ctr",
		Memory: &MemoryStats{LimitBytes: ptr[uint64](256 << 20), UsageBytes: 268173312, WorkingSetBytes: 268173312 - 50331648, SwapBytes: ptr[uint64](0), OOMKills: 3},
		CPU:    &CPUStats{LimitCores: ptr(0.5), UsageSeconds: 123.456789, Periods: 4500, ThrottledPeriods: 120, ThrottledSeconds: 9.876543},
		Pids:   &PidsStats{Limit: ptr[uint64](100), Current: 14},
		Pressure: &Pressure{
			CPU:    &PSI{Some: PSILine{Avg10: 12, Avg60: 7.5, TotalSeconds: 98.765432}},
			Memory: &PSI{Some: PSILine{Avg10: 1.53, Avg60: 0.87, TotalSeconds: 1.234567}, Full: &PSILine{Avg10: 0.5, Avg60: 0.25, TotalSeconds: 0.456789}},
			IO:     &PSI{Some: PSILine{}, Full: &PSILine{}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		a, _ := json.MarshalIndent(got, "", " ")
		b, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("got %s\nwant %s", a, b)
	}
	if n, err := c.OOMKills(); err != nil || n != 3 {
		t.Errorf("OOMKills = %d, %v; want 3", n, err)
	}
}

// TestReadV2Unlimited: no limit anywhere is null in JSON, never 0 or a huge number.
func TestReadV2Unlimited(t *testing.T) {
	mount := t.TempDir()
	files(t, mount, map[string]string{
		"memory.max": "max\n", "memory.current": "1048576\n", "memory.stat": v2MemoryStat, "memory.events": v2MemoryEvents,
		"cpu.max": "max 100000\n", "cpu.stat": "usage_usec 10\nuser_usec 5\nsystem_usec 5\n",
		"pids.max": "max\n", "pids.current": "3\n",
	})
	got, err := V2(mount, mount).Read()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	for _, want := range []string{`"limit_bytes":null`, `"limit_cores":null`, `"limit":null`, `"pressure":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: want %s", b, want)
		}
	}
	// inactive_file (48 MiB) is more than the usage here: the working set stays at 0.
	if got.Memory.WorkingSetBytes != 0 || got.Memory.SwapBytes != nil {
		t.Errorf("memory %+v: want working set 0, no swap", got.Memory)
	}
	if got.CPU.Periods != 0 || got.CPU.UsageSeconds != 10e-6 {
		t.Errorf("cpu %+v: want usage only (no cpu controller: no periods)", got.CPU)
	}
}

func TestReadV2Errors(t *testing.T) {
	mount := t.TempDir()
	files(t, mount, map[string]string{"memory.current": "12\n", "memory.max": "lots\n", "memory.stat": "", "memory.events": ""})
	if _, err := V2(mount, mount).ReadMemory(); err == nil || !strings.Contains(err.Error(), `"lots" is not a limit`) {
		t.Errorf("ReadMemory with a bad memory.max: %v", err)
	}
	if _, err := V2(t.TempDir(), mount).Read(); err == nil {
		t.Error("Read of an empty directory: want an error")
	}
	if _, err := parsePSI([]byte("full avg10=0.00\n")); err == nil {
		t.Error("parsePSI without some: want an error")
	}
	if _, err := parsePSI([]byte("some avg10=x\n")); err == nil {
		t.Error("parsePSI of a bad number: want an error")
	}
}

func TestReadV1(t *testing.T) {
	mount := t.TempDir()
	mem := filepath.Join(mount, "memory")
	files(t, mount, map[string]string{
		// No limit of its own; the parent's (64 MiB) holds, as hierarchical_memory_limit says.
		"memory/ctr/memory.limit_in_bytes": "9223372036854771712\n",
		"memory/ctr/memory.usage_in_bytes": "66060288\n",
		"memory/ctr/memory.stat": `cache 589824
rss 1810432
hierarchical_memory_limit 67108864
hierarchical_memsw_limit 9223372036854771712
total_cache 589824
total_rss 65470464
total_swap 4096
total_inactive_file 16384
total_active_file 573440
`,
		"memory/ctr/memory.oom_control":              "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
		"memory/ctr/gaffer.web/memory.oom_control":   "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"memory/ctr/gaffer.web/x/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
		"cpu/ctr/cpu.cfs_quota_us":                   "150000\n",
		"cpu/ctr/cpu.cfs_period_us":                  "100000\n",
		"cpu/ctr/cpu.stat":                           "nr_periods 10\nnr_throttled 2\nthrottled_time 3000000000\nnr_bursts 0\nburst_time 0\n",
		"cpu/cpu.cfs_quota_us":                       "-1\n",
		"cpu/cpu.cfs_period_us":                      "100000\n",
		"cpuacct/ctr/cpuacct.usage":                  "2500000000\n",
		"pids/ctr/pids.max":                          "max\n",
		"pids/ctr/pids.current":                      "7\n",
		"unified/ctr/memory.pressure":                v2MemoryPressure,
	})
	c := V1Dirs(map[string]string{
		Memory: filepath.Join(mem, "ctr"), CPU: filepath.Join(mount, "cpu/ctr"), CPUAcct: filepath.Join(mount, "cpuacct/ctr"), Pids: filepath.Join(mount, "pids/ctr"),
	}, map[string]string{Memory: mem, CPU: filepath.Join(mount, "cpu"), CPUAcct: filepath.Join(mount, "cpuacct"), Pids: filepath.Join(mount, "pids")},
		filepath.Join(mount, "unified/ctr"))
	got, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := &Stats{
		Version: 1, Path: "/ctr",
		Memory:   &MemoryStats{LimitBytes: ptr[uint64](64 << 20), UsageBytes: 66060288, WorkingSetBytes: 66060288 - 16384, SwapBytes: ptr[uint64](4096), OOMKills: 7},
		CPU:      &CPUStats{LimitCores: ptr(1.5), UsageSeconds: 2.5, Periods: 10, ThrottledPeriods: 2, ThrottledSeconds: 3},
		Pids:     &PidsStats{Current: 7},
		Pressure: &Pressure{Memory: &PSI{Some: PSILine{Avg10: 1.53, Avg60: 0.87, TotalSeconds: 1.234567}, Full: &PSILine{Avg10: 0.5, Avg60: 0.25, TotalSeconds: 0.456789}}},
	}
	if !reflect.DeepEqual(got, want) {
		a, _ := json.MarshalIndent(got, "", " ")
		b, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("got %s\nwant %s", a, b)
	}
}

// TestReadSelf reads this machine's cgroup, whatever it is.
func TestReadSelf(t *testing.T) {
	c, err := Self()
	if errors.Is(err, ErrNone) {
		t.Skip("no cgroup hierarchy mounted")
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	t.Logf("%s: %s", c, b)
	if s.Memory != nil && s.Memory.LimitBytes != nil && *s.Memory.LimitBytes >= v1Unlimited {
		t.Errorf("limit %d: an unlimited value leaked through", *s.Memory.LimitBytes)
	}
}

func TestCanLimit(t *testing.T) {
	mount := t.TempDir()
	files(t, mount, map[string]string{
		"ctr/cgroup.controllers": "cpuset cpu io pids\n", "ctr/cgroup.subtree_control": "", "ctr/cgroup.procs": "1\n",
	})
	v2 := V2(filepath.Join(mount, "ctr"), mount)
	errs := v2.CanLimit(Limits{MemoryMax: 1 << 20, CPUMax: 0.5, PidsMax: 10})
	if len(errs) != 1 || errs[0].Key != "memory_max" || !strings.Contains(errs[0].Error(), "needs the memory controller in the cgroup v2 subtree") {
		t.Errorf("v2 without memory: %v", errs)
	}
	if errs := (*Cgroup)(nil).CanLimit(Limits{PidsMax: 1}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "pids_max: needs a writable cgroup v2 subtree: no cgroup found; run with --cgroupns=private") {
		t.Errorf("no cgroup: %v", errs)
	}
	v1 := V1Dirs(map[string]string{Memory: filepath.Join(mount, "ctr")}, map[string]string{Memory: mount}, "")
	errs = v1.CanLimit(Limits{MemoryMax: 1 << 20, MemoryHigh: 1 << 20, PidsMax: 3})
	var keys []string
	for _, e := range errs {
		keys = append(keys, e.Error())
	}
	want := []string{"memory_high: needs cgroup v2: cgroup v1 has no memory.high (use memory_max)", "pids_max: needs the cgroup v1 pids controller, which is not mounted here"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("v1: %q, want %q", keys, want)
	}
	if errs := v1.CanLimit(Limits{}); errs != nil {
		t.Errorf("no limits: %v", errs)
	}
}

func TestMade(t *testing.T) {
	mount := t.TempDir()
	files(t, mount, map[string]string{
		"ctr/gaffer.web/memory.current": "1048576\n", "ctr/gaffer.web.2/memory.current": "2097152\n",
		"ctr/init/memory.current": "0\n", "ctr/gaffer.file": "not a directory",
	})
	made := V2(filepath.Join(mount, "ctr"), mount).Made()
	if len(made) != 2 || made["web"] == nil || made["web.2"] == nil {
		t.Fatalf("Made() = %v, want web and web.2", made)
	}
	if made["web.2"].Unified != filepath.Join(mount, "ctr/gaffer.web.2") || made["web.2"].Path != "/ctr/gaffer.web.2" {
		t.Errorf("web.2: %+v", made["web.2"])
	}
	v1 := V1Dirs(map[string]string{Memory: filepath.Join(mount, "ctr")}, map[string]string{Memory: mount}, "")
	if m := v1.Made(); len(m) != 2 || m["web"].V1[Memory] != filepath.Join(mount, "ctr/gaffer.web") {
		t.Errorf("v1 Made() = %v", m)
	}
	if m := (*Cgroup)(nil).Made(); len(m) != 0 {
		t.Errorf("nil: %v", m)
	}
}

// BenchmarkReadSelf is the cost of reading the container's cgroup (a stats collection's part),
// and of the OOM kill count alone (a look's), on this machine.
func BenchmarkReadSelf(b *testing.B) {
	c, err := Self()
	if err != nil {
		b.Skip(err)
	}
	b.Run("Read", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Read(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OOMKills", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.OOMKills(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestOOMCounter: the counter of the looks reads what OOMKills reads, v1 subtree included, with
// a handful of allocations (the paths handed to the kernel), not one per file or directory entry.
func TestOOMCounter(t *testing.T) {
	mount := t.TempDir()
	files(t, mount, map[string]string{
		"v2/memory.events":                   v2MemoryEvents,
		"v1/memory.oom_control":              "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
		"v1/gaffer.web/memory.oom_control":   "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
		"v1/gaffer.web/x/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
		"v1/memory.stat":                     "cache 0\n",
	})
	v2 := V2(filepath.Join(mount, "v2"), mount)
	v1 := V1Dirs(map[string]string{Memory: filepath.Join(mount, "v1")}, map[string]string{Memory: mount}, "")
	for _, c := range []*Cgroup{v2, v1} {
		want, err := c.OOMKills()
		if err != nil {
			t.Fatal(err)
		}
		o := c.NewOOMCounter()
		if got, err := o.Read(); err != nil || got != want {
			t.Errorf("%v: counter %d %v, OOMKills %d", c, got, err, want)
		}
		allocs := testing.AllocsPerRun(20, func() { _, _ = o.Read() })
		if allocs > 8 {
			t.Errorf("%v: %.0f allocations per read", c, allocs)
		}
		t.Logf("%v: %d, %.0f allocations per read", c, want, allocs)
	}
	if _, err := (*OOMCounter)(nil).Read(); err == nil {
		t.Error("nil counter: want an error")
	}
	if (&Cgroup{}).NewOOMCounter() != nil {
		t.Error("no memory controller: want no counter")
	}
}

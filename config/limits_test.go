package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"gaffer/cgroup"

	"github.com/pelletier/go-toml/v2"
)

// decodeWith decodes a gaffer.toml text as Load does, with check as the machine's answer to
// which limits it can give.
func decodeWith(t *testing.T, text string, check func(cgroup.Limits) []cgroup.LimitError) (*Config, error) {
	t.Helper()
	root := map[string]any{}
	if err := toml.Unmarshal([]byte(text), &root); err != nil {
		t.Fatal(err)
	}
	d := &decoder{src: singleSource("gaffer.toml", lineIndex([]byte(text))), users: testUsers(), limitCheck: check}
	cfg := d.document(root)
	return cfg, d.errs.err()
}

// anything is a machine that can give every limit.
func anything(cgroup.Limits) []cgroup.LimitError { return nil }

func TestLimits(t *testing.T) {
	cfg, err := decodeWith(t, `[process.worker]
cmd = "w"
memory_max = "256M"
memory_high = "200MiB"
cpu_max = "0.5"
pids_max = 100

[process.b]
cmd = "b"
memory_max = 1073741824
cpu_max = 2

[process.c]
cmd = "c"
memory_max = "1.5g"
cpu_max = 0.25
`, anything)
	if err != nil {
		t.Fatal(err)
	}
	want := []cgroup.Limits{
		{MemoryMax: 256 << 20, MemoryHigh: 200 << 20, CPUMax: 0.5, PidsMax: 100},
		{MemoryMax: 1 << 30, CPUMax: 2},
		{MemoryMax: 3 << 29, CPUMax: 0.25},
	}
	for i, p := range cfg.Processes {
		if p.Limits != want[i] {
			t.Errorf("%s: %+v, want %+v", p.Name, p.Limits, want[i])
		}
		// to_dict and back, also through JSON.
		got, err := fromDict(p.ToDict(), testUsers())
		if err != nil || got.Limits != p.Limits {
			t.Errorf("%s: FromDict(ToDict) limits %+v, %v", p.Name, got.Limits, err)
		}
		b, _ := json.Marshal(p.ToDict())
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if got, err := fromDict(m, testUsers()); err != nil || got.Limits != p.Limits {
			t.Errorf("%s: through JSON limits %+v, %v", p.Name, got.Limits, err)
		}
	}
	if d := cfg.Processes[0].ToDict(); d["memory_max"] != uint64(256<<20) || d["cpu_max"] != 0.5 || d["pids_max"] != uint64(100) {
		t.Errorf("ToDict: %v %v %v", d["memory_max"], d["cpu_max"], d["pids_max"])
	}
	if d := NewProcess("x", "x").ToDict(); d["memory_max"] != nil || d["memory_high"] != nil || d["cpu_max"] != nil || d["pids_max"] != nil {
		t.Errorf("ToDict without limits: want nil, got %v", d)
	}
}

func TestLimitErrors(t *testing.T) {
	const a = "[process.a]\ncmd = \"x\"\n"
	for _, tc := range []struct {
		name, text, want string
	}{
		{"no unit", a + "memory_max = 256\n", `gaffer.toml:3: process.a.memory_max: an integer (256) is less than 1M: give a unit, e.g. "256M"`},
		{"small", a + "memory_max = \"512K\"\n", `gaffer.toml:3: process.a.memory_max: a string ("512K") is less than 1M: give a unit, e.g. "256M"`},
		{"bad unit", a + "memory_high = \"2X\"\n", `gaffer.toml:3: process.a.memory_high: bad size "2X": unknown unit (want K, M, G or T)`},
		{"not a size", a + "memory_max = \"lots\"\n", `gaffer.toml:3: process.a.memory_max: bad size "lots": want e.g. "256M", "1.5G", "512MiB"`},
		{"negative", a + "memory_max = \"-1G\"\n", `gaffer.toml:3: process.a.memory_max: bad size "-1G": want e.g. "256M", "1.5G", "512MiB"`},
		{"wrong type", a + "memory_max = true\n", `gaffer.toml:3: process.a.memory_max: want a size such as "256M" or a number of bytes, got a boolean (true)`},
		{"huge", a + "memory_max = \"9000000T\"\n", `gaffer.toml:3: process.a.memory_max: a string ("9000000T") is more than any machine has`},
		{"high above max", a + "memory_max = \"1G\"\nmemory_high = \"2G\"\n", `gaffer.toml:4: process.a.memory_high: memory_high 2G is above memory_max 1G: it would never act`},
		{"cpu zero", a + "cpu_max = \"0\"\n", `gaffer.toml:3: process.a.cpu_max: 0 cpus is less than 0.01 (the kernel's shortest quota: 1 ms per 100 ms)`},
		{"cpu word", a + "cpu_max = \"half\"\n", `gaffer.toml:3: process.a.cpu_max: bad number of cpus "half": want e.g. "0.5" or "2"`},
		{"cpu type", a + "cpu_max = [1]\n", `gaffer.toml:3: process.a.cpu_max: want a number of cpus such as "0.5", got an array`},
		{"pids zero", a + "pids_max = 0\n", `gaffer.toml:3: process.a.pids_max: want at least 1, got 0`},
		{"pids string", a + "pids_max = \"10\"\n", `gaffer.toml:3: process.a.pids_max: want an integer, got a string ("10")`},
		{"detach", a + "detach = true\npids_max = 10\n", `gaffer.toml:4: process.a.pids_max: pids_max with detach: a detached process outlives gaffer, and its cgroup is removed when gaffer exits`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeWith(t, tc.text, anything)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestLimitsRefused: where the machine cannot give a limit, the file is refused at that key, with
// what is missing; a file without limits does not even ask.
func TestLimitsRefused(t *testing.T) {
	asked := 0
	v2ro := func(l cgroup.Limits) []cgroup.LimitError {
		asked++
		var out []cgroup.LimitError
		if l.MemoryMax > 0 {
			out = append(out, cgroup.LimitError{Key: "memory_max", Err: errors.New("needs a writable cgroup v2 subtree: run with --cgroupns=private")})
		}
		if l.PidsMax > 0 {
			out = append(out, cgroup.LimitError{Key: "pids_max", Err: errors.New("needs the pids controller")})
		}
		return out
	}
	_, err := decodeWith(t, `[process.web]
cmd = "web"

[process.worker]
cmd = "w"
# what the worker may use
memory_max = "256M"
cpu_max = "0.5"
pids_max = 100
`, v2ro)
	want := []string{
		"gaffer.toml:7: process.worker.memory_max: needs a writable cgroup v2 subtree: run with --cgroupns=private",
		"gaffer.toml:9: process.worker.pids_max: needs the pids controller",
	}
	if err == nil || !reflect.DeepEqual(strings.Split(err.Error(), "\n"), want) {
		t.Errorf("got %v\nwant %s", err, strings.Join(want, "\n"))
	}
	asked = 0
	if _, err := decodeWith(t, "[process.web]\ncmd = \"web\"\n", v2ro); err != nil || asked != 0 {
		t.Errorf("no limits: err %v, asked the cgroup %d times", err, asked)
	}
	// A dict is not about to run: not checked.
	if _, err := fromDict(map[string]any{"name": "x", "cmd": []any{"x"}, "memory_max": int64(1 << 30)}, testUsers()); err != nil {
		t.Errorf("FromDict with memory_max: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]float64{
		"1048576": 1 << 20, "1M": 1 << 20, "1m": 1 << 20, "1MB": 1 << 20, "1MiB": 1 << 20, "1Mi": 1 << 20,
		"2G": 2 << 30, "1.5G": 3 << 29, "3T": 3 << 40, "64k": 64 << 10, " 256M ": 256 << 20, "10 M": 10 << 20,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "1Q", "1.2.3M", "0x10M", "1e3M"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q): want an error", in)
		}
	}
}

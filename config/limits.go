package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gaffer/cgroup"
)

// The per-process resource limits: memory_max, memory_high, cpu_max, pids_max. A process that
// sets one runs in a cgroup of its own, which gaffer can make only where its cgroup is delegated
// (cgroup v2) or writable (v1, as root); elsewhere the file is refused, never silently run
// without the limit.

// MinMemory is the smallest memory_max or memory_high a file may give: a number of bytes that
// small is a missing unit ("256" for "256M"), and a process under it is killed at once.
const MinMemory = 1 << 20

// MinCPU is the smallest cpu_max: the kernel's shortest quota, 1 ms per 100 ms period.
const MinCPU = 0.01

// limits reads the limit keys of a process.
func (d *decoder) limits(p *Process, get func(string) (any, keyPath, bool)) {
	if v, kk, ok := get("memory_max"); ok {
		p.Limits.MemoryMax, _ = d.bytes(kk, v)
	}
	if v, kk, ok := get("memory_high"); ok {
		p.Limits.MemoryHigh, _ = d.bytes(kk, v)
	}
	if v, kk, ok := get("cpu_max"); ok {
		p.Limits.CPUMax, _ = d.cores(kk, v)
	}
	if v, kk, ok := get("pids_max"); ok {
		if n, ok := d.atLeast(kk, v, 1); ok {
			p.Limits.PidsMax = uint64(n)
		}
	}
	l := p.Limits
	if l.MemoryHigh > 0 && l.MemoryMax > 0 && l.MemoryHigh > l.MemoryMax {
		_, kk, _ := get("memory_high")
		d.errorf(kk, "memory_high %s is above memory_max %s: it would never act", formatBytes(l.MemoryHigh), formatBytes(l.MemoryMax))
	}
	if l.Any() && p.Detach {
		_, kk, _ := get(firstSet(l))
		d.errorf(kk, "%s with detach: a detached process outlives gaffer, and its cgroup is removed when gaffer exits", firstSet(l))
	}
}

// firstSet names the first limit set in l.
func firstSet(l cgroup.Limits) string {
	switch {
	case l.MemoryMax > 0:
		return "memory_max"
	case l.MemoryHigh > 0:
		return "memory_high"
	case l.CPUMax > 0:
		return "cpu_max"
	}
	return "pids_max"
}

// bytes reads a size: an integer number of bytes, or a string with a binary unit: "256M",
// "1.5G", "512Mi", "64MiB", "2g" (K, M, G, T are powers of 1024, as in docker run --memory and
// systemd's MemoryMax).
func (d *decoder) bytes(k keyPath, v any) (uint64, bool) {
	var n float64
	switch x := v.(type) {
	case int64:
		n = float64(x)
	case string:
		f, err := parseBytes(x)
		if err != nil {
			d.errorf(k, "%v", err)
			return 0, false
		}
		n = f
	default:
		d.wrongType(k, `a size such as "256M" or a number of bytes`, v)
		return 0, false
	}
	switch {
	case n < MinMemory:
		d.errorf(k, "%s is less than %s: give a unit, e.g. \"256M\"", describe(v), formatBytes(MinMemory))
		return 0, false
	case n >= 1<<62:
		d.errorf(k, "%s is more than any machine has", describe(v))
		return 0, false
	}
	return uint64(n), true
}

// parseBytes reads NUMBER[UNIT], UNIT one of K, M, G, T (any case), optionally followed by i
// and B: powers of 1024.
func parseBytes(s string) (float64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToUpper(strings.TrimSpace(t[len(num):]))
	f, err := strconv.ParseFloat(num, 64)
	plainNumber := strings.Trim(num, "0123456789") == "" || strings.Trim(num, "0123456789") == "."
	if err != nil || !plainNumber || f < 0 || math.IsInf(f, 0) {
		return 0, fmt.Errorf("bad size %q: want e.g. \"256M\", \"1.5G\", \"512MiB\"", s)
	}
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	mult := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
	m, ok := mult[unit]
	if !ok {
		return 0, fmt.Errorf("bad size %q: unknown unit (want K, M, G or T)", s)
	}
	return math.Floor(f * m), nil
}

// cores reads cpu_max: a number of cpus, as a string ("0.5") or a number.
func (d *decoder) cores(k keyPath, v any) (float64, bool) {
	var c float64
	switch x := v.(type) {
	case int64:
		c = float64(x)
	case float64:
		c = x
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(k, "bad number of cpus %q: want e.g. \"0.5\" or \"2\"", x)
			return 0, false
		}
		c = f
	default:
		d.wrongType(k, `a number of cpus such as "0.5"`, v)
		return 0, false
	}
	if c < MinCPU {
		d.errorf(k, "%v cpus is less than %v (the kernel's shortest quota: 1 ms per 100 ms)", c, MinCPU)
		return 0, false
	}
	return c, true
}

// checkLimits refuses every limit that this machine cannot give, at its key: gaffer's cgroup is
// found and asked (cgroup.Cgroup.CanLimit) once, when some process sets a limit. Nothing is
// checked for a dict (FromDict), which is not about to run.
func (d *decoder) checkLimits(procs []Process) {
	if d.src == nil {
		return
	}
	check := d.limitCheck
	for _, p := range procs {
		if !p.Limits.Any() {
			continue
		}
		if check == nil {
			c, _ := cgroup.Self() // nil when there is none: every limit is refused
			check = c.CanLimit
		}
		for _, e := range check(p.Limits) {
			d.errorf(keyPath{"process", p.Name, e.Key}, "%v", e.Err)
		}
	}
}

// formatBytes writes a size with the largest binary unit that keeps it whole: 256M, 1536K.
func formatBytes(n uint64) string {
	for _, u := range []struct {
		s    string
		size uint64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatUint(n/u.size, 10) + u.s
		}
	}
	return strconv.FormatUint(n, 10)
}

// uintOrNil is a limit for ToDict: the number, or nil when not set.
func uintOrNil(n uint64) any {
	if n == 0 {
		return nil
	}
	return n
}

// floatOrNil is cpu_max for ToDict.
func floatOrNil(f float64) any {
	if f == 0 {
		return nil
	}
	return f
}

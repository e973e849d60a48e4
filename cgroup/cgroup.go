// Package cgroup finds the cgroup gaffer runs in (cgroup v2, v1, or the hybrid layout of both;
// with or without a cgroup namespace), reads the container's limits and usage from it, and makes
// the child cgroups that per-process limits need. It reads and writes cgroupfs files and nothing
// else; it imports nothing of gaffer's.
//
// What is read, per version:
//
//	                 v2                                   v1
//	memory limit     memory.max (min over ancestors)      memory.limit_in_bytes, hierarchical_memory_limit
//	usage            memory.current                       memory.usage_in_bytes
//	working set      usage - memory.stat inactive_file    usage - memory.stat total_inactive_file
//	swap             memory.swap.current                  memory.stat total_swap
//	oom kills        memory.events oom_kill (hierarchical) memory.oom_control oom_kill, summed over the subtree
//	cpu limit        cpu.max (min over ancestors)         cpu.cfs_quota_us / cpu.cfs_period_us
//	cpu usage        cpu.stat usage_usec                  cpuacct.usage
//	throttling       cpu.stat nr_periods nr_throttled throttled_usec   cpu.stat nr_periods nr_throttled throttled_time
//	pids             pids.max, pids.current               pids.max, pids.current
//	pressure         cpu|memory|io.pressure               the v2 files, when a v2 hierarchy is mounted too
//
// A limit that is not set is nil ("unlimited"), never 0 or the kernel's huge number.
package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The v1 controllers gaffer reads or writes.
const (
	Memory  = "memory"
	CPU     = "cpu"
	CPUAcct = "cpuacct"
	Pids    = "pids"
)

// Cgroup is where a process sits in the cgroup hierarchies, as the directories that hold its
// files. The zero value has no directories: every read finds nothing.
type Cgroup struct {
	// Version is 2 on a unified hierarchy, 1 when the controllers are on v1 hierarchies (also in
	// the hybrid layout, where a v2 hierarchy is mounted beside them).
	Version int
	// Unified is the directory in the v2 hierarchy, "" when none is mounted: every file on v2,
	// only the pressure files in the hybrid layout.
	Unified string
	// V1 is the directory of each v1 controller (memory, cpu, cpuacct, pids) that is mounted.
	V1 map[string]string
	// Path is the cgroup's path as /proc/self/cgroup shows it (on v1, the memory controller's):
	// for messages.
	Path string
	// mounts is the mount point of each directory in Unified and V1: the ancestors read for
	// effective limits stop there.
	mounts map[string]string
}

// Self finds the cgroup of the calling process from /proc/self/cgroup and /proc/self/mountinfo.
func Self() (*Cgroup, error) {
	return OfProcess("self")
}

// OfProcess finds the cgroup of pid ("self", or a number) as the caller sees it: the process's
// /proc/PID/cgroup resolved against the caller's mounts.
func OfProcess(pid string) (*Cgroup, error) {
	cg, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cannot find the cgroup: %w", err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cannot find the cgroup: %w", err)
	}
	return Parse(cg, mi)
}

// ErrNone is returned by Parse when no cgroup hierarchy the process is in is mounted.
var ErrNone = errors.New("no cgroup hierarchy is mounted")

// mount is one cgroup filesystem mount from mountinfo.
type mount struct {
	root, point string
	v2          bool
	controllers []string // v1
}

// Parse resolves the lines of /proc/PID/cgroup ("ID:CONTROLLERS:PATH") against the cgroup mounts
// of mountinfo: a controller's directory is its mount point joined with the part of PATH below
// the mount's root. In a cgroup namespace, PATH and the mount's root are both relative to the
// namespace's root ("/"); without one, a container's cgroupfs is a bind mount whose root is the
// container's own cgroup. A hierarchy whose path lies outside every mount of it is left out.
func Parse(procCgroup, mountinfo []byte) (*Cgroup, error) {
	mounts := parseMountinfo(mountinfo)
	c := &Cgroup{V1: map[string]string{}, mounts: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		ctrls, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if id == "0" && ctrls == "" {
			if dir, mp, ok := resolve(mounts, path, func(m mount) bool { return m.v2 }); ok {
				c.Unified, c.mounts[dir] = dir, mp
				if c.Path == "" {
					c.Path = path
				}
			}
			continue
		}
		for _, ctrl := range strings.Split(ctrls, ",") {
			switch ctrl {
			case Memory, CPU, CPUAcct, Pids:
			default:
				continue
			}
			dir, mp, ok := resolve(mounts, path, func(m mount) bool { return !m.v2 && slices.Contains(m.controllers, ctrl) })
			if !ok {
				continue
			}
			c.V1[ctrl], c.mounts[dir] = dir, mp
			if ctrl == Memory {
				c.Path = path
			}
		}
	}
	switch {
	case len(c.V1) > 0:
		c.Version = 1
	case c.Unified != "":
		c.Version = 2
	default:
		return nil, ErrNone
	}
	return c, nil
}

// resolve finds the directory of path in the mounts that match: of those whose root holds path,
// the one with the longest root (a bind mount of the cgroup itself beats the hierarchy's root),
// and, among equals, the first under /sys/fs/cgroup.
func resolve(mounts []mount, path string, match func(mount) bool) (dir, point string, ok bool) {
	best := -1
	for i, m := range mounts {
		if !match(m) || !under(path, m.root) {
			continue
		}
		if best < 0 || len(m.root) > len(mounts[best].root) ||
			(len(m.root) == len(mounts[best].root) && !strings.HasPrefix(mounts[best].point, "/sys/fs/cgroup") && strings.HasPrefix(m.point, "/sys/fs/cgroup")) {
			best = i
		}
	}
	if best < 0 {
		return "", "", false
	}
	m := mounts[best]
	rel := strings.TrimPrefix(path, m.root)
	return filepath.Join(m.point, rel), m.point, true
}

// under reports whether path is root or below it.
func under(path, root string) bool {
	if root == "/" {
		return strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "/..")
	}
	return path == root || strings.HasPrefix(path, root+"/")
}

// parseMountinfo returns the cgroup and cgroup2 mounts of a mountinfo file:
// "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS".
func parseMountinfo(b []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		m := mount{root: unescape(f[3]), point: unescape(f[4])}
		switch g[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			if len(g) < 3 {
				continue
			}
			m.controllers = strings.Split(g[2], ",")
		default:
			continue
		}
		out = append(out, m)
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

// V2 is the cgroup v2 directory dir, whose hierarchy is mounted at mount (the ancestors read for
// effective limits stop there): for tests on fixture directories, and for a known path.
func V2(dir, mount string) *Cgroup {
	return &Cgroup{Version: 2, Unified: dir, Path: "/" + strings.TrimPrefix(strings.TrimPrefix(dir, mount), "/"), mounts: map[string]string{dir: mount}}
}

// V1Dirs is the cgroup v1 directories dirs (controller -> directory), each hierarchy mounted at
// mounts[controller], and unified the v2 directory of the hybrid layout ("" for none): for tests
// on fixture directories.
func V1Dirs(dirs, mounts map[string]string, unified string) *Cgroup {
	c := &Cgroup{Version: 1, V1: map[string]string{}, Unified: unified, mounts: map[string]string{}}
	for ctrl, dir := range dirs {
		c.V1[ctrl] = dir
		c.mounts[dir] = mounts[ctrl]
		if ctrl == Memory {
			c.Path = "/" + strings.TrimPrefix(strings.TrimPrefix(dir, mounts[ctrl]), "/")
		}
	}
	if unified != "" {
		c.mounts[unified] = filepath.Dir(unified)
	}
	return c
}

// String describes the cgroup for messages: "cgroup v1 /path" or "cgroup v2 /path".
func (c *Cgroup) String() string {
	if c == nil {
		return "no cgroup"
	}
	return fmt.Sprintf("cgroup v%d %s", c.Version, c.Path)
}

// dir is the directory of controller on v1, or the unified directory on v2.
func (c *Cgroup) dir(controller string) string {
	if c == nil {
		return ""
	}
	if c.Version == 2 {
		return c.Unified
	}
	return c.V1[controller]
}

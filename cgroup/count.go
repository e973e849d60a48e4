package cgroup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// OOMCounter reads a cgroup's OOM kill count (as Cgroup.OOMKills) again and again with buffers
// of its own, so that a look every few seconds of an idle PID 1 leaves next to no garbage for the
// collector. It is not safe for concurrent use.
type OOMCounter struct {
	v2   bool
	file string // memory.events (v2) or memory.oom_control (v1) of the cgroup
	dir  string // v1: the memory cgroup, whose subtree is summed
	buf  []byte
	dent []byte
}

// NewOOMCounter returns a counter of c's OOM kills; nil when c has no memory controller.
func (c *Cgroup) NewOOMCounter() *OOMCounter {
	dir := c.dir(Memory)
	if dir == "" {
		return nil
	}
	if c.Version == 2 {
		return &OOMCounter{v2: true, file: filepath.Join(dir, "memory.events"), buf: make([]byte, 512)}
	}
	return &OOMCounter{file: filepath.Join(dir, "memory.oom_control"), dir: dir, buf: make([]byte, 512), dent: make([]byte, 8192)}
}

// Read returns the count.
func (o *OOMCounter) Read() (uint64, error) {
	if o == nil {
		return 0, errors.New("no memory controller")
	}
	n, err := o.count(unix.AT_FDCWD, o.file)
	if err != nil || o.v2 {
		return n, err
	}
	fd, err := unix.Open(o.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", o.dir, err)
	}
	defer unix.Close(fd)
	walked := 0
	sub, err := o.subtree(fd, &walked)
	return n + sub, err
}

// count reads the oom_kill line of the file name (relative to the directory dirfd).
func (o *OOMCounter) count(dirfd int, name string) (uint64, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", name, err)
	}
	defer unix.Close(fd)
	n := 0
	for n < len(o.buf) {
		m, err := unix.Read(fd, o.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", name, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return oomKillField(o.buf[:n]), nil
}

// oomKillField finds "oom_kill N" among the lines of b; 0 when there is none.
func oomKillField(b []byte) uint64 {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if v, ok := bytes.CutPrefix(line, []byte("oom_kill ")); ok {
			var n uint64
			for _, c := range bytes.TrimSpace(v) {
				if c < '0' || c > '9' {
					return 0
				}
				n = n*10 + uint64(c-'0')
			}
			return n
		}
	}
	return 0
}

// subtree sums memory.oom_control's oom_kill over the cgroups below the open directory fd (v1),
// at most maxWalk of them.
func (o *OOMCounter) subtree(fd int, walked *int) (uint64, error) {
	var dirs []string // the child cgroups: few, usually none
	for {
		n, err := unix.Getdents(fd, o.dent)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("list cgroups: %w", err)
		}
		if n <= 0 {
			break
		}
		for off := 0; off+19 <= n; {
			reclen := int(binary.NativeEndian.Uint16(o.dent[off+16:]))
			if reclen == 0 || off+reclen > n {
				break
			}
			typ := o.dent[off+18]
			name := o.dent[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			if typ == unix.DT_DIR && !bytes.Equal(name, []byte(".")) && !bytes.Equal(name, []byte("..")) {
				dirs = append(dirs, string(name))
			}
			off += reclen
		}
	}
	var total uint64
	for _, d := range dirs {
		if *walked++; *walked > maxWalk {
			break
		}
		sub, err := unix.Openat(fd, d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // removed meanwhile
		}
		if n, err := o.count(sub, "memory.oom_control"); err == nil {
			total += n
		}
		if n, err := o.subtree(sub, walked); err == nil {
			total += n
		}
		unix.Close(sub)
	}
	return total, nil
}

package stats

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The per-process numbers are read from /proc here, the same files and fields gopsutil's process
// package reads (the tests compare the two). Importing that package would cost every gaffer,
// `gaffer --` and `gaffer exec` too, the package initialisation of gopsutil/cpu, which it
// imports: that reads /proc/stat twice before main runs.

// pageSize converts the page counts of /proc/PID/statm to bytes.
var pageSize = uint64(os.Getpagesize())

// readProc reads /proc/<pid>/<name> into buf, growing it when the file does not fit, and returns
// the bytes read (they alias buf).
func readProc(pid int, name string, buf *[]byte) ([]byte, error) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(*buf) {
			*buf = append(*buf, make([]byte, len(*buf)+512)...)
		}
		m, err := unix.Read(fd, (*buf)[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return (*buf)[:n], nil
		}
		n += m
	}
}

// memory returns the resident and virtual size in bytes from /proc/PID/statm (fields 2 and 1, in
// pages), as gopsutil's MemoryInfo.
func memory(pid int, buf *[]byte) (rss, vms uint64, err error) {
	b, err := readProc(pid, "statm", buf)
	if err != nil {
		return 0, 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("statm of %d: %d fields", pid, len(f))
	}
	if vms, err = strconv.ParseUint(string(f[0]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("statm of %d: %w", pid, err)
	}
	if rss, err = strconv.ParseUint(string(f[1]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("statm of %d: %w", pid, err)
	}
	return rss * pageSize, vms * pageSize, nil
}

// numFDs counts the entries of /proc/PID/fd, as gopsutil's NumFDs, without making a string of
// each name.
func numFDs(pid int, buf *[]byte) (int32, error) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var count int32
	for {
		n, err := unix.Getdents(fd, *buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n <= 0 {
			return count, nil
		}
		count += countDirents((*buf)[:n])
	}
}

// countDirents counts the linux_dirent64 records in b, leaving out "." and "..".
func countDirents(b []byte) int32 {
	// struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
	const nameOff = 19
	var n int32
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < nameOff || reclen > len(b) {
			break
		}
		name := b[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if !(len(name) == 1 && name[0] == '.') && !(len(name) == 2 && name[0] == '.' && name[1] == '.') {
			n++
		}
		b = b[reclen:]
	}
	return n
}

// ioBytes returns read_bytes and write_bytes of /proc/PID/io (bytes that went to or came from
// storage), as gopsutil's IOCounters. Reading another user's process needs CAP_SYS_PTRACE.
func ioBytes(pid int, buf *[]byte) (read, write uint64, err error) {
	b, err := readProc(pid, "io", buf)
	if err != nil {
		return 0, 0, err
	}
	var found int
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(k) {
		case "read_bytes":
			dst = &read
		case "write_bytes":
			dst = &write
		default:
			continue
		}
		if *dst, err = strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64); err != nil {
			return 0, 0, fmt.Errorf("io of %d: %w", pid, err)
		}
		found++
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("io of %d: no read_bytes or write_bytes", pid)
	}
	return read, write, nil
}

// ctxSwitches returns voluntary plus involuntary context switches from /proc/PID/status, as
// gopsutil's NumCtxSwitches.
func ctxSwitches(pid int, buf *[]byte) (int64, error) {
	b, err := readProc(pid, "status", buf)
	if err != nil {
		return 0, err
	}
	var sum int64
	var found int
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || (string(k) != "voluntary_ctxt_switches" && string(k) != "nonvoluntary_ctxt_switches") {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status of %d: %w", pid, err)
		}
		sum += n
		found++
	}
	if found < 2 {
		return 0, fmt.Errorf("status of %d: no context switch counts", pid)
	}
	return sum, nil
}

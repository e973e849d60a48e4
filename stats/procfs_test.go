package stats

import (
	"bytes"
	"gaffer/internal/testutil"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// TestProcReadersMatchGopsutil checks that the /proc readers give what gopsutil's process package
// (which stats used before; only the tests import it now) gives for the same stopped process, so
// that nothing moves between the two readings.
func TestProcReadersMatchGopsutil(t *testing.T) {
	cmd := start(t, "sleep", "600")
	pid := cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Stopped: wait until the kernel says so, else the numbers may still move.
	waitStopped(t, pid)

	p := process.Process{Pid: int32(pid)}
	buf := make([]byte, 64) // small: readProc must grow it
	rss, vms, err := memory(pid, &buf)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := p.MemoryInfo()
	if err != nil {
		t.Fatal(err)
	}
	if rss != mi.RSS || vms != mi.VMS {
		t.Errorf("memory: rss %d vms %d, gopsutil %d %d", rss, vms, mi.RSS, mi.VMS)
	}
	fds, err := numFDs(pid, &buf)
	if err != nil {
		t.Fatal(err)
	}
	gfds, err := p.NumFDs()
	if err != nil {
		t.Fatal(err)
	}
	if fds != gfds || fds < 3 {
		t.Errorf("fds: %d, gopsutil %d", fds, gfds)
	}
	rd, wr, err := ioBytes(pid, &buf)
	if err != nil {
		t.Fatal(err)
	}
	io, err := p.IOCounters()
	if err != nil {
		t.Fatal(err)
	}
	if rd != io.ReadBytes || wr != io.WriteBytes {
		t.Errorf("io: read %d write %d, gopsutil %d %d", rd, wr, io.ReadBytes, io.WriteBytes)
	}
	cs, err := ctxSwitches(pid, &buf)
	if err != nil {
		t.Fatal(err)
	}
	gcs, err := p.NumCtxSwitches()
	if err != nil {
		t.Fatal(err)
	}
	if cs != gcs.Voluntary+gcs.Involuntary || cs <= 0 {
		t.Errorf("ctx switches: %d, gopsutil %d+%d", cs, gcs.Voluntary, gcs.Involuntary)
	}
}

// waitStopped waits until pid is in state T (stopped).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	var w worker
	w.init()
	testutil.WaitFor(t, 10*time.Second, "the child stopped", func() bool {
		b, err := readProc(pid, "stat", &w.buf)
		if err != nil {
			return false
		}
		i := bytes.LastIndexByte(b, ')')
		return i >= 0 && i+2 < len(b) && b[i+2] == 'T'
	})
}

func TestProcReadersGone(t *testing.T) {
	cmd := start(t, "true")
	pid := cmd.Process.Pid
	_ = cmd.Wait() // reaped: the pid is gone
	buf := make([]byte, 512)
	if _, _, err := memory(pid, &buf); !gone(err) {
		t.Errorf("memory of a gone process: %v", err)
	}
	if _, err := ctxSwitches(pid, &buf); !gone(err) {
		t.Errorf("ctxSwitches of a gone process: %v", err)
	}
	if _, err := numFDs(pid, &buf); !gone(err) {
		t.Errorf("numFDs of a gone process: %v", err)
	}
}

func TestCountDirents(t *testing.T) {
	d := t.TempDir()
	for _, n := range []string{"a", "bb", "a-much-longer-name-than-the-others", "..x"} {
		if err := os.WriteFile(d+"/"+n, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := syscall.Open(d, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	buf := make([]byte, 4096)
	n, err := syscall.Getdents(fd, buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := countDirents(buf[:n]); got != 4 {
		t.Errorf("countDirents = %d, want 4", got)
	}
}

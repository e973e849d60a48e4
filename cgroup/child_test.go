package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testParent makes a cgroup of its own below the test's in every hierarchy of ctrls (v1) and
// returns the Cgroup of it; everything is removed at the end of the test. It skips when this is
// not a v1 machine where root may write the hierarchies.
func testParentV1(t *testing.T, ctrls ...string) *Cgroup {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	self, err := Self()
	if err != nil || self.Version != 1 {
		t.Skipf("needs cgroup v1 (this is %v, %v); TestChildV2 covers v2", self, err)
	}
	dirs, mounts := map[string]string{}, map[string]string{}
	name := fmt.Sprintf("gaffer-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, ctrl := range ctrls {
		parent := self.V1[ctrl]
		if parent == "" || unix.Access(parent, unix.W_OK) != nil {
			t.Skipf("cgroup v1 %s is not writable here", ctrl)
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeTree(t, dir) })
		dirs[ctrl], mounts[ctrl] = dir, self.mounts[parent]
	}
	return V1Dirs(dirs, mounts, "")
}

// removeTree removes a cgroup directory and those below it, children first, killing what still
// runs in them.
func removeTree(t *testing.T, dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range slices.Backward(dirs) {
		for try := 0; ; try++ {
			b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			err := unix.Rmdir(d)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if try == 500 {
				t.Errorf("cannot remove cgroup %s: %v", d, err)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// procs lists the pids in a cgroup directory.
func procs(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// startSh starts sh -c script with the cgroup descriptor start gets (>= 0 on v2).
func startSh(script string, fd int) (*os.Process, error) {
	sys := &syscall.SysProcAttr{Setpgid: true}
	if fd >= 0 {
		sys.UseCgroupFD, sys.CgroupFD = true, fd
	}
	return os.StartProcess("/bin/sh", []string{"sh", "-c", script}, &os.ProcAttr{Files: []*os.File{nil, nil, os.Stderr}, Sys: sys})
}

// TestChildV1 makes a process's cgroups on this machine's v1 hierarchies: the limits are written,
// the child and what it forks at once are born in them (none escapes, as a write to cgroup.procs
// after the start lets happen), no thread of the test stays there, and Close removes them.
func TestChildV1(t *testing.T) {
	base := testParentV1(t, Memory, Pids)
	p := base.NewParent()
	ch, err := p.Child("web.2", Limits{MemoryMax: 64 << 20, PidsMax: 50})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := p.Child("web.2", Limits{}); again != ch {
		t.Error("a second Child for the same name made another cgroup")
	}
	for file, want := range map[string]string{
		filepath.Join(ch.V1[Memory], "memory.limit_in_bytes"): "67108864",
		filepath.Join(ch.V1[Pids], "pids.max"):                "50",
	} {
		if b, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s: %q %v, want %s", file, b, err, want)
		}
	}
	const n = 20
	var started []*os.Process
	t.Cleanup(func() {
		for _, pr := range started {
			_ = unix.Kill(-pr.Pid, unix.SIGKILL)
			_, _ = pr.Wait()
		}
	})
	for range n {
		err := ch.Start(func(fd int) error {
			if fd != -1 {
				t.Errorf("v1 start got cgroup fd %d, want -1", fd)
			}
			pr, err := startSh("sleep 100 & exec sleep 100", fd)
			if err == nil {
				started = append(started, pr)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each sh forks its background sleep at once: 2n processes, all in both cgroups.
	for _, ctrl := range []string{Memory, Pids} {
		var got []string
		deadline := time.Now().Add(30 * time.Second)
		for got = procs(t, ch.V1[ctrl]); len(got) < 2*n && time.Now().Before(deadline); got = procs(t, ch.V1[ctrl]) {
			time.Sleep(10 * time.Millisecond)
		}
		if len(got) != 2*n {
			t.Errorf("%s: %d processes in the child cgroup, want %d", ctrl, len(got), 2*n)
		}
		// The test's own pid may show there for a moment: the starting thread goes back to the
		// parent (base, here) and ends, but its end is asynchronous. Only children count.
		self := strconv.Itoa(os.Getpid())
		if left := slices.DeleteFunc(procs(t, base.V1[ctrl]), func(p string) bool { return p == self }); len(left) != 0 {
			t.Errorf("%s: processes outside the child cgroup: %v", ctrl, left)
		}
	}
	// Every thread of the test is back where it was.
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, _ := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "cgroup"))
		if strings.Contains(string(b), "gaffer.web.2") {
			t.Errorf("thread %s of the test is still in the child cgroup: %s", task.Name(), b)
		}
	}
	if n, err := ch.OOMKills(); err != nil || n != 0 {
		t.Errorf("OOMKills = %d, %v", n, err)
	}
	if m, err := ch.ReadMemory(); err != nil || m.LimitBytes == nil || *m.LimitBytes != 64<<20 {
		t.Errorf("ReadMemory = %+v, %v: want the 64 MiB limit", m, err)
	}
	for _, pr := range started {
		_ = unix.Kill(-pr.Pid, unix.SIGKILL)
		_, _ = pr.Wait()
	}
	started = nil
	// The background sleeps were reparented to init (or the subreaper): wait until they are gone.
	deadline := time.Now().Add(30 * time.Second)
	for len(procs(t, ch.V1[Memory]))+len(procs(t, ch.V1[Pids])) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range ch.V1 {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Close: %v", dir, err)
		}
	}
}

// TestChildV1Reset: a cgroup an earlier gaffer left with a limit is taken over with the limits of
// now (none).
func TestChildV1Reset(t *testing.T) {
	base := testParentV1(t, Memory)
	left := filepath.Join(base.V1[Memory], childPrefix+"web")
	if err := os.Mkdir(left, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := write(filepath.Join(left, "memory.limit_in_bytes"), "1048576"); err != nil {
		t.Fatal(err)
	}
	p := base.NewParent()
	ch, err := p.Child("web", Limits{PidsMax: 0})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := ch.ReadMemory(); err != nil || m.LimitBytes != nil {
		t.Errorf("limit after the takeover: %+v, %v; want none", m, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestChildV2 makes a process's cgroup on a v2 hierarchy: with a writable v2 hierarchy (a v2
// host, or the hugetlb-only one of the hybrid layout, where the limits cannot be set but the
// placement can be tested), the processes of the parent move into its leaf, the child is born in
// its cgroup through CLONE_INTO_CGROUP, and Close removes what it made.
func TestChildV2(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	self, err := Self()
	if err != nil || self.Unified == "" || unix.Access(self.Unified, unix.W_OK) != nil {
		t.Skipf("needs a writable cgroup v2 hierarchy (%v, %v)", self, err)
	}
	dir := filepath.Join(self.Unified, fmt.Sprintf("gaffer-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(t, dir) })
	base := V2(dir, self.mounts[self.Unified])
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	have := strings.Fields(string(b))
	var l Limits
	if slices.Contains(have, Memory) {
		l.MemoryMax, l.MemoryHigh = 64<<20, 48<<20
	}
	if slices.Contains(have, Pids) {
		l.PidsMax = 50
	}
	if slices.Contains(have, CPU) {
		l.CPUMax = 0.5
	}
	t.Logf("controllers %q: limits %+v", have, l)

	// Something already runs in the parent, as gaffer's earlier children do.
	before, err := startSh("exec sleep 100", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = before.Kill(); _, _ = before.Wait() }()
	if err := write(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(before.Pid)); err != nil {
		t.Fatal(err)
	}

	p := base.NewParent()
	ch, err := p.Child("web", l)
	if err != nil {
		t.Fatal(err)
	}
	if got := procs(t, dir); len(got) != 0 {
		t.Errorf("processes left in the parent: %v", got)
	}
	if got := procs(t, filepath.Join(dir, LeafName)); !slices.Equal(got, []string{strconv.Itoa(before.Pid)}) {
		t.Errorf("leaf holds %v, want the earlier process %d", got, before.Pid)
	}
	var pr *os.Process
	if err := ch.Start(func(fd int) error {
		if fd < 0 {
			t.Errorf("v2 start got no cgroup fd")
		}
		pr, err = startSh("sleep 100 & exec sleep 100", fd)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Kill(-pr.Pid, unix.SIGKILL); _, _ = pr.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for len(procs(t, ch.Unified)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := procs(t, ch.Unified); len(got) != 2 {
		t.Errorf("child cgroup holds %v, want the sh and its sleep", got)
	}
	if l.MemoryMax > 0 {
		if m, err := ch.ReadMemory(); err != nil || m.LimitBytes == nil || *m.LimitBytes != l.MemoryMax {
			t.Errorf("memory of the child: %+v, %v", m, err)
		}
	}
	_ = unix.Kill(-pr.Pid, unix.SIGKILL)
	_, _ = pr.Wait()
	for len(procs(t, ch.Unified)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ch.Unified); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("child cgroup still there: %v", err)
	}
	// The earlier process keeps the leaf.
	if _, err := os.Stat(filepath.Join(dir, LeafName)); err != nil {
		t.Errorf("leaf: %v", err)
	}
}

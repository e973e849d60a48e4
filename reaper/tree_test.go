package reaper

import (
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

func comm(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(b))
}

func TestDescendants(t *testing.T) {
	r := New()
	drain(t, r)
	var proc *os.Process
	shPid, ch, err := r.Start(func() (int, error) {
		p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "sleep 30 & sleep 30 & wait"},
			&os.ProcAttr{Sys: &syscall.SysProcAttr{Setpgid: true}})
		if err != nil {
			return 0, err
		}
		proc = p
		return p.Pid, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Release()
	t.Cleanup(func() {
		// The whole group: the shell and both sleeps.
		_ = unix.Kill(-shPid, unix.SIGKILL)
		reapUntil(t, r, func(_ []Exit, none bool) bool { return none })
		select {
		case e := <-ch:
			if e.Pid != shPid {
				t.Errorf("exit of %d delivered for %d", e.Pid, shPid)
			}
		default:
			t.Errorf("the shell's exit was never delivered")
		}
	})

	// Wait until the shell has two children that are sleep (not forks still being sh).
	var below []int
	deadline := time.Now().Add(5 * time.Second)
	for {
		below, err = Descendants(shPid)
		if err != nil {
			t.Fatalf("Descendants(%d): %v", shPid, err)
		}
		if len(below) == 2 && comm(below[0]) == "sleep" && comm(below[1]) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shell %d has descendants %v, want two sleeps", shPid, below)
		}
		time.Sleep(time.Millisecond)
	}
	for _, p := range below {
		if p == shPid {
			t.Errorf("Descendants(%d) holds the process itself", shPid)
		}
		if pp, ok := ParentOf(p); !ok || pp != shPid {
			t.Errorf("sleep %d has parent %d, want %d", p, pp, shPid)
		}
	}

	all, err := Descendants(os.Getpid())
	if err != nil {
		t.Fatalf("Descendants(self): %v", err)
	}
	for _, p := range append([]int{shPid}, below...) {
		if !slices.Contains(all, p) {
			t.Errorf("Descendants(self) = %v, missing %d (%s)", all, p, comm(p))
		}
	}
	if slices.Contains(all, os.Getpid()) {
		t.Errorf("Descendants(self) holds self")
	}
	// No duplicates.
	sorted := slices.Clone(all)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(all) {
		t.Errorf("Descendants(self) has duplicates: %v", all)
	}
	// Breadth first: the shell comes before its children.
	if i, j := slices.Index(all, shPid), slices.Index(all, below[0]); i > j {
		t.Errorf("Descendants(self) = %v: child %d listed before its parent %d", all, below[0], shPid)
	}

	for _, p := range below {
		if d, err := Descendants(p); err != nil || len(d) != 0 {
			t.Errorf("Descendants(sleep %d) = %v, %v; want none", p, d, err)
		}
	}
}

func TestDescendantsOfMissingProcess(t *testing.T) {
	// pid_max is at most 2^22; this pid cannot exist.
	d, err := Descendants(1 << 23)
	if err != nil || len(d) != 0 {
		t.Errorf("Descendants(no such pid) = %v, %v; want none, nil", d, err)
	}
}

func TestParentOf(t *testing.T) {
	if pp, ok := ParentOf(os.Getpid()); !ok || pp != os.Getppid() {
		t.Errorf("ParentOf(self) = %d, %v; want %d", pp, ok, os.Getppid())
	}
	if pp, ok := ParentOf(1 << 23); ok {
		t.Errorf("ParentOf(no such pid) = %d, true", pp)
	}
}

func TestParentOfAwkwardName(t *testing.T) {
	// The command name in /proc/PID/stat may hold spaces and parentheses; it comes from the name
	// of the file executed, so run sleep through a symlink with such a name.
	sleep, err := filepath.EvalSymlinks("/bin/sleep")
	if err != nil {
		t.Skip("no /bin/sleep")
	}
	name := ") 1 (x) 2"
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(sleep, link); err != nil {
		t.Fatal(err)
	}
	r := New()
	drain(t, r)
	pid, ch := startProcess(t, r, link, "30")
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		reapUntil(t, r, func(_ []Exit, _ bool) bool {
			select {
			case <-ch:
				return true
			default:
				return false
			}
		})
	}()
	// comm is set at exec; wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for comm(pid) != name {
		if time.Now().After(deadline) {
			t.Fatalf("comm of %d is %q, want %q", pid, comm(pid), name)
		}
		time.Sleep(time.Millisecond)
	}
	if pp, ok := ParentOf(pid); !ok || pp != os.Getpid() {
		t.Errorf("ParentOf(%d named %q) = %d, %v; want %d", pid, name, pp, ok, os.Getpid())
	}
	d, err := Descendants(os.Getpid())
	if err != nil || !slices.Contains(d, pid) {
		t.Errorf("Descendants(self) = %v, %v; want it to hold %d", d, err, pid)
	}
}

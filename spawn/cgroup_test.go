package spawn

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gaffer/cgroup"
	"gaffer/reaper"

	"golang.org/x/sys/unix"
)

// TestStartInCgroup: with UseCgroupFD the child is born in that cgroup v2 directory (on this
// machine's hybrid layout, the v2 hierarchy mounted beside the v1 ones will do).
func TestStartInCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a cgroup")
	}
	self, err := cgroup.Self()
	if err != nil || self.Unified == "" || unix.Access(self.Unified, unix.W_OK) != nil {
		t.Skipf("needs a writable cgroup v2 hierarchy (%v, %v)", self, err)
	}
	name := fmt.Sprintf("gaffer-spawn-test-%d", os.Getpid())
	dir := filepath.Join(self.Unified, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for try := 0; unix.Rmdir(dir) != nil && try < 500; try++ {
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cannot remove %s", dir)
		}
	}()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	r := reaper.New()
	out, e := run(t, r, Spec{Argv: []string{"sh", "-c", "cat /proc/self/cgroup"}, Env: testEnv, CgroupFD: fd, UseCgroupFD: true})
	if e.Code() != 0 {
		t.Fatalf("exit %d", e.Code())
	}
	var v2 string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "0::") {
			v2 = line
		}
	}
	if !strings.HasSuffix(v2, "/"+name) {
		t.Errorf("child's /proc/self/cgroup:\n%s\nwant 0::.../%s", out, name)
	}
}

package tests

import (
	"gaffer/internal/testutil"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gaffer/cgroup"
)

// dockerOOMImage is the test image with the memory hog (tests/alloc) at /alloc.
const dockerOOMImage = "gaffer-e2e:oom"

// TestDockerOOM runs a child that allocates 200 MiB in a container limited to 64 MiB (docker run
// --memory 64m, no swap): docker logs show gaffer's line naming the OOM kill, with `gaffer --`
// and with `gaffer up`. A per-process limit where Docker mounts the cgroupfs read-only (its
// default) is refused. On a cgroup v2 host this is the v2 end-to-end test.
func TestDockerOOM(t *testing.T) {
	needRoot(t)
	busybox := needDocker(t)
	alloc := buildAlloc(t)
	e := startDockerEngine(t)
	e.buildImage(t, busybox)
	ctx := filepath.Join(e.dir, "oom-context")
	if err := os.Mkdir(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyToContext(alloc, filepath.Join(ctx, "alloc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+dockerImage+"\nCOPY alloc /alloc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must(t, "build", "-q", "-t", dockerOOMImage, ctx)
	limit := []string{"--memory", "64m", "--memory-swap", "64m", "--network", "none"}

	// waitExit waits for a container to stop and returns its exit code.
	waitExit := func(t *testing.T, id string) string {
		t.Helper()
		got := e.must(t, "wait", id)
		return strings.TrimSpace(got)
	}

	t.Run("gaffer --", func(t *testing.T) {
		id := e.must(t, append(append([]string{"run", "-d"}, limit...), dockerOOMImage, "/alloc", "200")...)
		t.Cleanup(func() { e.run(t, "rm", "-f", id) })
		if code := waitExit(t, id); code != "137" {
			t.Errorf("exit code %s, want 137 (the child's SIGKILL); logs %q", code, e.logs(t, id))
		}
		re := regexp.MustCompile(`(?m)^gaffer: main was killed by the OOM killer \(memory limit 64 MiB, working set \d+(\.\d)? [KMG]iB\)$`)
		if logs := e.logs(t, id); !re.MatchString(logs) {
			t.Errorf("docker logs:\n%s\nwant a line matching %v", logs, re)
		}
	})

	t.Run("gaffer up", func(t *testing.T) {
		cfg := t.TempDir()
		_ = os.Chmod(cfg, 0o755)
		toml := `[process.hog]
cmd = ["/alloc", "200"]
on_end = "ignore"

[process.keep]
cmd = "sleep 1000"
`
		if err := os.WriteFile(filepath.Join(cfg, "gaffer.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"run", "-d", "-v", cfg + ":/cfg:ro", "--entrypoint", "/gaffer"}, limit...)
		id := e.must(t, append(args, dockerOOMImage, "up", "-c", "/cfg/gaffer.toml")...)
		t.Cleanup(func() { e.run(t, "rm", "-f", id) })
		re := regexp.MustCompile(`(?m)^gaffer +\| hog was killed by the OOM killer \(memory limit 64 MiB, working set \d+(\.\d)? [KMG]iB\)$`)
		var logs string
		testutil.WaitFor(t, 60*time.Second, "gaffer's OOM line in docker logs", func() bool {
			logs = e.logs(t, id)
			return re.MatchString(logs)
		})
		if !strings.Contains(logs, "hog exited with code 137 (SIGKILL)") {
			t.Errorf("docker logs:\n%s\nwant hog's exit line too", logs)
		}
		// keep still runs: gaffer goes on.
		e.must(t, "stop", "-t", "20", id)
	})

	t.Run("limits refused", func(t *testing.T) {
		cfg := t.TempDir()
		_ = os.Chmod(cfg, 0o755)
		if err := os.WriteFile(filepath.Join(cfg, "gaffer.toml"), []byte("[process.w]\ncmd = \"true\"\nmemory_max = \"32M\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := e.run(t, "run", "--rm", "--network", "none", "-v", cfg+":/cfg:ro", "--entrypoint", "/gaffer", dockerOOMImage, "check", "-c", "/cfg/gaffer.toml")
		if code != 2 || out != "" || !strings.HasPrefix(errOut, "/cfg/gaffer.toml:3: process.w.memory_max: needs a writable cgroup") {
			t.Errorf("gaffer check with memory_max in a default container: exit %d, stdout %q, stderr %q; want exit 2 and the refusal at line 3", code, out, errOut)
		}
		t.Logf("refusal: %s", errOut)
	})

	// With the cgroupfs mounted read-write, memory_max works in a container; gaffer removes the
	// cgroup it made when it exits, so the container's own can go.
	t.Run("memory_max with a writable cgroupfs", func(t *testing.T) {
		cfg := t.TempDir()
		_ = os.Chmod(cfg, 0o755)
		toml := `[process.hog]
cmd = ["/alloc", "200"]
memory_max = "32M"
on_end = "ignore"

[process.keep]
cmd = "sleep 1000"
`
		if err := os.WriteFile(filepath.Join(cfg, "gaffer.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
		// cgroup v1 (Docker shares the host's cgroup namespace there): the host's cgroupfs
		// bind-mounted read-write. cgroup v2: a private cgroup namespace, which --privileged
		// mounts read-write (not possible on this test machine, whose runc cannot apply every
		// capability).
		writable := []string{"-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"}
		made := filepath.Join("/sys/fs/cgroup/memory", e.name())
		if self, err := cgroup.Self(); err == nil && self.Version == 2 {
			writable = []string{"--privileged", "--cgroupns=private"}
			made = filepath.Join("/sys/fs/cgroup", e.name())
		}
		args := append(append([]string{"run", "-d", "-v", cfg + ":/cfg:ro", "--entrypoint", "/gaffer"}, writable...), limit...)
		id := e.must(t, append(args, dockerOOMImage, "up", "-c", "/cfg/gaffer.toml")...)
		t.Cleanup(func() { e.run(t, "rm", "-f", id) })
		re := regexp.MustCompile(`(?m)^gaffer +\| hog was killed by the OOM killer \(memory limit 32 MiB, working set \d+(\.\d)? [KMG]iB\)$`)
		var logs string
		testutil.WaitFor(t, 60*time.Second, "gaffer's OOM line in docker logs", func() bool {
			logs = e.logs(t, id)
			return re.MatchString(logs) || strings.Contains(logs, "cannot start")
		})
		if !re.MatchString(logs) {
			t.Fatalf("docker logs:\n%s\nwant a line matching %v", logs, re)
		}
		made = filepath.Join(made, id, "gaffer.hog")
		if _, err := os.Stat(made); err != nil {
			t.Errorf("hog's cgroup: %v", err)
		}
		e.must(t, "stop", "-t", "20", id)
		if code := e.exitCode(t, id); code != 0 && code != 143 {
			t.Errorf("exit code %d after docker stop; logs:\n%s", code, e.logs(t, id))
		}
		if _, err := os.Stat(made); !os.IsNotExist(err) {
			t.Errorf("%s after the container stopped: %v, want it removed", made, err)
		}
	})
}

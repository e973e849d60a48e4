package tests

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dockerImage is the tag of the test image in the private engine.
const dockerImage = "gaffer-e2e:test"

// dockerfile builds the test image: no registry here, so FROM scratch with the static gaffer and
// Debian's static busybox, whose applets give the image a shell and the usual tools.
const dockerfile = `FROM scratch
COPY gaffer /gaffer
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENTRYPOINT ["/gaffer", "--"]
`

// dockerCallTimeout bounds one docker client call, so a wedged engine fails the test instead of
// hanging it.
const dockerCallTimeout = 60 * time.Second

// dockerStateDirs are created outside --data-root/--exec-root by dockerd 20.10 (its plugin exec
// root is hard-wired) and by containerd's shims (their sockets), children first.
var dockerStateDirs = []string{"/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd"}

// TestDocker runs gaffer as the ENTRYPOINT of containers in a private Docker engine and checks
// exit codes, docker stop/kill and zombie reaping from the outside.
func TestDocker(t *testing.T) {
	needRoot(t)
	busybox := needDocker(t)
	e := startDockerEngine(t)
	e.buildImage(t, busybox)

	t.Run("version", func(t *testing.T) {
		code, out, errOut := e.run(t, "run", "--rm", "--network", "none", "--entrypoint", "/gaffer", dockerImage, "--version")
		if code != 0 || !strings.HasPrefix(out, "gaffer ") {
			t.Fatalf("gaffer --version in the image: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		code, out, errOut = e.run(t, "run", "--rm", "--network", "none", dockerImage, "echo", "hello")
		if code != 0 || out != "hello" {
			t.Fatalf("echo hello: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			argv []string // after the image; ENTRYPOINT is gaffer -- unless it starts with --entrypoint
			want int
		}{
			{"exit 0", []string{"sh", "-c", "exit 0"}, 0},
			{"exit 1", []string{"sh", "-c", "exit 1"}, 1},
			{"exit 3", []string{"sh", "-c", "exit 3"}, 3},
			{"exit 42", []string{"sh", "-c", "exit 42"}, 42},
			{"exit 255", []string{"sh", "-c", "exit 255"}, 255},
			{"not found", []string{"no-such-command"}, 127},
			{"not executable", []string{"/bin"}, 126},
			{"killed by TERM", []string{"sh", "-c", "kill -TERM $$"}, 128 + int(syscall.SIGTERM)},
			{"killed by KILL", []string{"sh", "-c", "kill -KILL $$"}, 128 + int(syscall.SIGKILL)},
			{"success exit mapped", []string{"--entrypoint", "/gaffer", dockerImage, "-e", "3", "--", "sh", "-c", "exit 3"}, 0},
			{"usage error", []string{"--entrypoint", "/gaffer", dockerImage, "--no-such-flag", "--", "true"}, 2},
		} {
			args := []string{"run", "--rm", "--network", "none"}
			if tc.argv[0] != "--entrypoint" {
				args = append(args, dockerImage)
			}
			code, out, errOut := e.run(t, append(args, tc.argv...)...)
			if code != tc.want {
				t.Errorf("%s: docker run %q exited %d, want %d; stdout %q, stderr %q", tc.name, tc.argv, code, tc.want, out, errOut)
			}
		}
	})

	t.Run("stop", func(t *testing.T) {
		for _, tc := range []struct {
			name, script string
			ready        func(id string) bool
			want         int
			wantLog      string
		}{
			// A shell runs its trap only after its foreground command, so it waits on a background
			// sleep; the trap is set before "ready" is printed.
			{
				name:    "trap exits 7",
				script:  `trap 'echo got TERM; exit 7' TERM; echo ready; sleep 1000 & wait`,
				ready:   func(id string) bool { return strings.Contains(e.logs(t, id), "ready") },
				want:    7,
				wantLog: "got TERM",
			},
			// No trap: sh execs sleep, which dies of the forwarded TERM. Wait until it runs, so the
			// TERM is not racing gaffer's start.
			{
				name:   "plain sleep",
				script: `sleep 1000`,
				ready:  func(id string) bool { c, _, _ := e.run(t, "exec", id, "pidof", "sleep"); return c == 0 },
				want:   128 + int(syscall.SIGTERM),
			},
		} {
			id := e.start(t, "sh", "-c", tc.script)
			testutil.WaitFor(t, 20*time.Second, tc.name+" container ready", func() bool { return tc.ready(id) })
			began := time.Now()
			e.must(t, "stop", "-t", "20", id)
			// A bound, not a benchmark: the full stop timeout (20 s, then SIGKILL: 137) means the
			// TERM was not forwarded.
			if took := time.Since(began); took > 10*time.Second {
				t.Errorf("%s: docker stop -t 20 took %v, want well under the timeout", tc.name, took)
			}
			if code := e.exitCode(t, id); code != tc.want {
				t.Errorf("%s: exit code after docker stop %d, want %d; logs %q", tc.name, code, tc.want, e.logs(t, id))
			}
			if logs := e.logs(t, id); !strings.Contains(logs, tc.wantLog) {
				t.Errorf("%s: logs %q, want %q", tc.name, logs, tc.wantLog)
			}
		}
	})

	t.Run("kill USR1", func(t *testing.T) {
		id := e.start(t, "sh", "-c", `trap 'echo got USR1; exit 10' USR1; echo ready; sleep 1000 & wait`)
		testutil.WaitFor(t, 20*time.Second, "trap set", func() bool { return strings.Contains(e.logs(t, id), "ready") })
		e.must(t, "kill", "-s", "USR1", id)
		if got := e.must(t, "wait", id); got != "10" {
			t.Errorf("docker wait after kill -s USR1: %q, want 10; logs %q", got, e.logs(t, id))
		}
		if logs := e.logs(t, id); !strings.Contains(logs, "got USR1") {
			t.Errorf("logs %q, want the trap's %q", logs, "got USR1")
		}
	})

	t.Run("zombies reaped", func(t *testing.T) {
		// Each ( ... &) subshell exits at once, so its sh outlives it and is reparented to PID 1,
		// which alone can reap it.
		const orphans = 5
		script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do (sh -c 'sleep 0.2; echo orphan exited' &); i=$((i+1)); done; exec sleep 1000`, orphans)
		orphansExited := func(id string) func() bool {
			return func() bool { return strings.Count(e.logs(t, id), "orphan exited") == orphans }
		}

		// The control: with sleep as PID 1 (the sh of the entrypoint execs it), nobody reaps, and
		// the check below must see the zombies.
		ctl := e.must(t, "run", "-d", "--network", "none", "--entrypoint", "/bin/sh", dockerImage, "-c", script)
		t.Cleanup(func() { e.run(t, "rm", "-f", ctl) })
		testutil.WaitFor(t, 20*time.Second, "orphans to exit (without gaffer)", orphansExited(ctl))
		testutil.WaitFor(t, 10*time.Second, "zombies in the container without gaffer", func() bool {
			zombies, _ := e.zombies(t, ctl)
			return zombies
		})

		id := e.start(t, "sh", "-c", script)
		testutil.WaitFor(t, 20*time.Second, "orphans to exit", orphansExited(id))
		var last string
		testutil.WaitFor(t, 10*time.Second, "no zombies in the container", func() bool {
			var zombies bool
			zombies, last = e.zombies(t, id)
			return !zombies
		})
		t.Logf("processes after the orphans exited:\n%s", last)
	})
}

// needDocker skips the test when docker, dockerd or a static busybox is missing (fails it in CI,
// which installs them) and returns the path of busybox.
func needDocker(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if inCI() {
			t.Fatalf("%s; CI installs docker.io and busybox-static", msg)
		}
		t.Skipf("%s (apt-get install -y docker.io busybox-static); CI runs it", msg)
	}
	for _, name := range []string{"docker", "dockerd", "docker-init"} {
		if _, err := exec.LookPath(name); err != nil {
			missing("needs %s: %v", name, err)
		}
	}
	const busybox = "/bin/busybox"
	static, err := staticELF(busybox)
	if err != nil {
		missing("needs a static %s: %v", busybox, err)
	}
	if !static {
		// Debian's busybox package is dynamic; a FROM scratch image has no libc for it.
		missing("needs a static %s, this one is dynamically linked", busybox)
	}
	return busybox
}

// staticELF reports whether the ELF file at path has no program interpreter.
func staticELF(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("cannot read ELF %s: %w", path, err)
	}
	defer f.Close()
	return !slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }), nil
}

// dockerEngine is a private dockerd with everything under dir.
type dockerEngine struct {
	dir    string
	docker string   // client binary
	env    []string // for every docker call: points at this engine only
}

// startDockerEngine starts a private dockerd (its own containerd too) and registers its teardown.
// overlay2 is tried first; vfs, which works on any filesystem, is the fallback.
func startDockerEngine(t *testing.T) *dockerEngine {
	t.Helper()
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal(err)
	}
	// Short paths: unix sockets (ours and containerd's, deep under exec) allow 108 bytes.
	base := os.TempDir()
	if len(base) > 40 {
		base = "/tmp"
	}
	sweepStaleEngines(t, base)
	dir, err := os.MkdirTemp(base, dockerDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	// Held while the engine lives: a dir whose lock is free belongs to a crashed run.
	lock, err := lockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	e := &dockerEngine{dir: dir, docker: docker}
	t.Cleanup(func() { lock.Close() })
	e.env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "DOCKER_") })
	e.env = append(e.env,
		"DOCKER_HOST=unix://"+filepath.Join(dir, "d.sock"),
		"DOCKER_CONFIG="+filepath.Join(dir, "cli"), // not the user's ~/.docker
		// BuildKit needs the buildx plugin, which Debian's docker.io does not ship.
		"DOCKER_BUILDKIT=0",
	)
	var d *dockerd
	t.Cleanup(func() { e.teardown(t, d) })
	// On a machine busy enough, dockerd gives up on its containerd's start (a fixed timeout of its
	// own): try again, each time from a clean exec root, since a containerd pidfile left there
	// makes the next dockerd wait for whatever process got that pid since.
	for _, driver := range []string{"overlay2", "overlay2", "vfs"} {
		d, err = e.startDockerd(driver)
		if err == nil {
			t.Logf("dockerd %d up in %s with storage driver %s", d.pid, dir, driver)
			return e
		}
		t.Logf("dockerd with %s: %v", driver, err)
		d = nil
		e.killLeftovers(t)
		e.unmountAll(t)
		for _, sub := range []string{"data", "x"} {
			if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
				t.Fatalf("cannot clear %s: %v", sub, err)
			}
		}
	}
	t.Fatalf("cannot start dockerd; log:\n%s", e.logTail())
	return nil
}

// dockerDirPrefix names the directory of an engine, its cgroup parent and containerd namespace.
const dockerDirPrefix = "gaffer-docker-"

// lockDir creates and exclusively locks dir/lock; the lock goes when the file is closed or the
// process dies. The file is locked before it gets its name, so a sweep never takes it for stale.
func lockDir(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "lock-")
	if err != nil {
		return nil, fmt.Errorf("cannot create the lock of %s: %w", dir, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, "lock")); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot create the lock of %s: %w", dir, err)
	}
	return f, nil
}

// lockFile takes an exclusive lock on f without waiting.
func lockFile(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("cannot lock %s: %w", f.Name(), err)
	}
	return nil
}

// sweepStaleEngines removes what a run killed before its teardown (a timeout panic) left in
// base: Pdeathsig stopped its engine, but its directory and cgroups stay. Directories of live
// runs are locked and skipped.
func sweepStaleEngines(t *testing.T, base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, dockerDirPrefix+"*"))
	for _, dir := range dirs {
		lock, err := os.Open(filepath.Join(dir, "lock"))
		if err != nil {
			continue
		}
		if lockFile(lock) != nil {
			lock.Close()
			continue
		}
		t.Logf("removing %s, left by a run that did not finish", dir)
		e := &dockerEngine{dir: dir}
		e.killLeftovers(t)
		e.unmountAll(t)
		e.removeCgroups(t)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("cannot remove %s: %v", dir, err)
		}
		lock.Close()
	}
}

// removeStateDirs removes dockerStateDirs when they are empty and no engine runs on the machine
// (the directories of another one are not ours to remove, even empty).
func removeStateDirs() {
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		comm, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "comm"))
		if name := strings.TrimSpace(string(comm)); err == nil && (name == "dockerd" || strings.HasPrefix(name, "containerd")) {
			return
		}
	}
	for _, dir := range dockerStateDirs {
		_ = os.Remove(dir) // fails when not empty
	}
}

// dockerd is one running engine: dockerd under docker-init.
type dockerd struct {
	cmd  *exec.Cmd     // docker-init
	pid  int           // dockerd
	done chan struct{} // closed when docker-init was reaped
}

// startDockerd starts dockerd and waits until it answers.
func (e *dockerEngine) startDockerd(driver string) (*dockerd, error) {
	cfg := filepath.Join(e.dir, "daemon.json")
	// The trust key would otherwise go to /etc/docker/key.json; it has no flag, only this key.
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `{"deprecated-key-path": %q}`, filepath.Join(e.dir, "key.json")), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write daemon config: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(e.dir, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot create dockerd log: %w", err)
	}
	defer logf.Close()
	ns := e.name()
	// docker-init (tini, shipped with docker.io) is the subreaper of the engine: containerd's
	// shims daemonize, and would otherwise be left for the machine's PID 1 to reap.
	cmd := exec.Command("docker-init", "-s", "--", "dockerd",
		"--config-file", cfg,
		"--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "x"),
		"--pidfile", filepath.Join(e.dir, "dockerd.pid"),
		"-H", "unix://"+filepath.Join(e.dir, "d.sock"),
		"--storage-driver", driver,
		// Never touch host networking; containers run with --network none.
		"--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
		// Our own cgroup parent and containerd namespaces, so teardown knows what is ours.
		"--cgroup-parent", "/"+ns,
		"--containerd-namespace", ns,
		"--containerd-plugins-namespace", ns+"-plugins",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies (timeout panic), docker-init gets TERM and forwards it to dockerd,
	// which shuts down its containers. Pdeathsig fires when the forking thread exits, so that
	// thread stays locked until docker-init is reaped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	d := &dockerd{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer close(d.done)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("cannot start dockerd: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := e.command(ctx, "info", "--format", "{{.ServerVersion}}").Output()
		cancel()
		if err == nil && len(bytes.TrimSpace(out)) > 0 {
			// dockerd writes its pidfile before it listens.
			b, err := os.ReadFile(filepath.Join(e.dir, "dockerd.pid"))
			if d.pid, _ = strconv.Atoi(strings.TrimSpace(string(b))); err != nil || d.pid <= 0 {
				e.stopDockerd(d)
				return nil, fmt.Errorf("no dockerd pid in its pidfile (%q): %v", b, err)
			}
			return d, nil
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("dockerd exited: %v", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			e.stopDockerd(d)
			return nil, errors.New("dockerd did not answer within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// name is unique to this engine: its cgroup parent and containerd namespace.
func (e *dockerEngine) name() string { return filepath.Base(e.dir) }

// stopDockerd stops dockerd by its pid: TERM (it stops its containers and its containerd), then
// KILL if it takes too long; docker-init exits with it. It reports whether TERM sufficed.
func (e *dockerEngine) stopDockerd(d *dockerd) bool {
	signal := func(sig syscall.Signal) {
		if d.pid > 0 {
			_ = syscall.Kill(d.pid, sig)
		} else { // not up yet: docker-init forwards it
			_ = d.cmd.Process.Signal(sig)
		}
	}
	signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return true
	case <-time.After(30 * time.Second):
	}
	signal(syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	return false
}

// teardown stops the engine and removes every trace of it: processes, mounts, cgroups, the
// directories outside dir that the engine created, and dir.
func (e *dockerEngine) teardown(t *testing.T, d *dockerd) {
	if d != nil {
		ctx, cancel := context.WithTimeout(context.Background(), dockerCallTimeout)
		if ids, err := e.command(ctx, "ps", "-aq").Output(); err == nil && len(bytes.TrimSpace(ids)) > 0 {
			t.Logf("containers left at teardown: %s", bytes.Fields(ids))
			_ = e.command(ctx, append([]string{"rm", "-f"}, strings.Fields(string(ids))...)...).Run()
		}
		cancel()
		if !e.stopDockerd(d) {
			t.Logf("dockerd ignored SIGTERM for 30s, killed it")
		}
	}
	if t.Failed() {
		t.Logf("dockerd log:\n%s", e.logTail())
	}
	e.killLeftovers(t)
	e.unmountAll(t)
	e.removeCgroups(t)
	removeStateDirs()
	if err := os.RemoveAll(e.dir); err != nil {
		t.Errorf("cannot remove %s: %v", e.dir, err)
	}
	if pids := e.leftoverPids(); len(pids) > 0 {
		t.Errorf("processes of the engine still running after teardown: %v", pids)
	}
	if mounts := e.mounts(); len(mounts) > 0 {
		t.Errorf("mounts of the engine left after teardown: %q", mounts)
	}
}

// leftoverPids lists processes of this engine: any whose command line names dir (containerd,
// its shims) and any in the engine's cgroups (container processes). Zombies have no command
// line and leave their cgroup; their parent reaps them.
func (e *dockerEngine) leftoverPids() []int {
	self := os.Getpid()
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(e.dir)) {
			pids = append(pids, pid)
		}
	}
	for _, root := range e.cgroupRoots() {
		_ = filepath.WalkDir(root, func(path string, de os.DirEntry, err error) error {
			if err != nil || de.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(path)
			for f := range strings.FieldsSeq(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// killLeftovers SIGKILLs whatever of the engine survived dockerd (after a graceful stop: nothing)
// and waits until it is gone.
func (e *dockerEngine) killLeftovers(t *testing.T) {
	pids := e.leftoverPids()
	if len(pids) == 0 {
		return
	}
	t.Logf("killing processes the engine left behind: %v", pids)
	deadline := time.Now().Add(10 * time.Second)
	for len(pids) > 0 && time.Now().Before(deadline) {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
		pids = e.leftoverPids()
	}
}

// mounts lists mount points under dir, deepest first.
func (e *dockerEngine) mounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Field 5 is the mount point; our paths have no characters that mountinfo escapes.
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == e.dir || strings.HasPrefix(fields[4], e.dir+"/")) {
			mps = append(mps, fields[4])
		}
	}
	slices.SortFunc(mps, func(a, b string) int { return len(b) - len(a) })
	return mps
}

// unmountAll detaches whatever dockerd left mounted under dir (after a graceful stop: nothing).
func (e *dockerEngine) unmountAll(t *testing.T) {
	for _, mp := range e.mounts() {
		t.Logf("unmounting %s, left by the engine", mp)
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			t.Errorf("cannot unmount %s: %v", mp, err)
		}
	}
}

// cgroupRoots lists the engine's cgroup parent in every hierarchy (v1 and v2).
func (e *dockerEngine) cgroupRoots() []string {
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", e.name()))
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", e.name())); err == nil {
		roots = append(roots, filepath.Join("/sys/fs/cgroup", e.name()))
	}
	return roots
}

// removeCgroups removes the engine's cgroup directories, children first.
func (e *dockerEngine) removeCgroups(t *testing.T) {
	for _, root := range e.cgroupRoots() {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, de os.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for _, d := range slices.Backward(dirs) {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cannot remove cgroup %s: %v", d, err)
			}
		}
	}
}

// logTail returns the end of dockerd's log.
func (e *dockerEngine) logTail() string {
	b, err := os.ReadFile(filepath.Join(e.dir, "dockerd.log"))
	if err != nil {
		return err.Error()
	}
	const keep = 8000
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return string(b)
}

// buildImage builds dockerImage from a context holding gaffer and busybox.
func (e *dockerEngine) buildImage(t *testing.T, busybox string) {
	t.Helper()
	ctx := filepath.Join(e.dir, "context")
	if err := os.Mkdir(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ from, to string }{{gafferBin, "gaffer"}, {busybox, "busybox"}} {
		if err := copyToContext(f.from, filepath.Join(ctx, f.to), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	e.must(t, "build", "-q", "-t", dockerImage, ctx)
	t.Logf("image built in %v", time.Since(began).Round(time.Millisecond))
}

// copyToContext copies from to to with mode perm.
func copyToContext(from, to string, perm os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("cannot copy %s: %w", from, err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("cannot copy %s: %w", from, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("cannot copy %s to %s: %w", from, to, err)
	}
	return dst.Close()
}

// command is a docker client call to this engine.
func (e *dockerEngine) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.docker, args...)
	cmd.Env = e.env
	return cmd
}

// run runs a docker client call and returns its exit code, stdout and stderr (trimmed). A call
// that cannot run or outlives dockerCallTimeout fails the test.
func (e *dockerEngine) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dockerCallTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := e.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("docker %q: no answer within %v", args, dockerCallTimeout)
	}
	if _, ok := errors.AsType[*exec.ExitError](err); err != nil && !ok {
		t.Fatalf("docker %q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), strings.TrimSpace(out.String()), strings.TrimSpace(errOut.String())
}

// must runs a docker client call that has to succeed and returns its stdout.
func (e *dockerEngine) must(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := e.run(t, args...)
	if code != 0 {
		t.Fatalf("docker %q exited %d: %s", args, code, errOut)
	}
	return out
}

// start runs argv under gaffer in a detached container, removed at the end of the test.
func (e *dockerEngine) start(t *testing.T, argv ...string) string {
	t.Helper()
	id := e.must(t, append([]string{"run", "-d", "--network", "none", dockerImage}, argv...)...)
	t.Cleanup(func() { e.run(t, "rm", "-f", id) })
	return id
}

// logs returns a container's stdout and stderr.
func (e *dockerEngine) logs(t *testing.T, id string) string {
	t.Helper()
	code, out, errOut := e.run(t, "logs", id)
	if code != 0 {
		t.Fatalf("docker logs %s exited %d: %s", id, code, errOut)
	}
	return out + "\n" + errOut
}

// exitCode returns the exit code of a stopped container.
func (e *dockerEngine) exitCode(t *testing.T, id string) int {
	t.Helper()
	s := e.must(t, "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", id)
	running, code, _ := strings.Cut(s, " ")
	n, err := strconv.Atoi(code)
	if running != "false" || err != nil {
		t.Fatalf("container %s: state %q, want stopped with an exit code", id, s)
	}
	return n
}

// zombies reports whether any process in the container is a zombie, and the container's process
// list (pid, state, ppid, name), read from /proc inside it.
func (e *dockerEngine) zombies(t *testing.T, id string) (bool, string) {
	t.Helper()
	// Processes may exit between the glob and cat: ignore their errors.
	out := e.must(t, "exec", id, "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null; true")
	var b strings.Builder
	var zombie bool
	for line := range strings.Lines(out) {
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		lp, rp := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
		if lp < 0 || rp < lp {
			continue
		}
		rest := strings.Fields(line[rp+1:])
		if len(rest) < 2 {
			continue
		}
		fmt.Fprintf(&b, "%s %s ppid %s %s\n", strings.TrimSpace(line[:lp]), rest[0], rest[1], line[lp:rp+1])
		zombie = zombie || rest[0] == "Z"
	}
	return zombie, b.String()
}

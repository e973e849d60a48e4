package tests

// Black-box tests of the API socket's fallback (issue 12): gaffer run as uid 65534 cannot create
// /run/gaffer.sock, listens in a private gaffer-65534 directory under /tmp instead and says so in
// one line, and client commands of the same uid find it with no flags. A gaffer-65534 that someone
// else prepared is refused, by gaffer and by the clients. Each gaffer runs in a mount namespace of
// its own with fresh /run (0755) and /tmp (1777) tmpfs, so nothing of this machine's /run or /tmp
// is touched or seen; the binary and its configuration are copied to that /run.

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"gaffer/internal/testutil"
)

// nobody runs a command as uid and gid 65534 with no supplementary groups.
var nobody = []string{"setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"}

// fallbackGaffer is a gaffer run as uid 65534 in a mount namespace of its own.
type fallbackGaffer struct {
	*gafferRun
	pid int      // gaffer's pid, for nsenter and /proc/PID/root
	env []string // its environment, which its clients share
}

// fallbackToml runs one process that says when it runs.
const fallbackToml = "[process.worker]\ncmd = \"sh -c 'echo up; exec sleep 1000'\"\n"

// startFallback starts `gaffer ARGS...` (up -c /run/gaffer.toml, or -- CMD with pid1) as uid 65534
// with env (and no XDG_RUNTIME_DIR, TMPDIR or GAFFER_SOCKET otherwise), after setup ran as root in
// its namespace.
func startFallback(t *testing.T, pid1 bool, env []string, setup string, args ...string) *fallbackGaffer {
	t.Helper()
	needRoot(t)
	// cd /: the tmpfs on /tmp hides the test's directory when the checkout is under /tmp, and
	// gaffer -- keeps its child in the directory it was started in.
	script := `mount -t tmpfs -o mode=0755 tmpfs /run && cp "$0" /run/gaffer && printf '%s' "$1" > /run/gaffer.toml &&
		mount -t tmpfs -o mode=1777 tmpfs /tmp && cd / && ` + setup + ` && shift &&
		exec env -u XDG_RUNTIME_DIR -u TMPDIR -u GAFFER_SOCKET ` + strings.Join(env, " ") + ` ` + strings.Join(nobody, " ") + ` /run/gaffer "$@"`
	argv := []string{"unshare", "-m", "--propagation", "private"}
	if pid1 {
		// --kill-child: when unshare ends, gaffer (PID 1 of the new namespace) gets SIGKILL.
		argv = []string{"unshare", "-p", "-f", "--kill-child", "-m", "--propagation", "private"}
	}
	argv = append(argv, "sh", "-c", script, gafferBin, fallbackToml)
	g := startGafferVia(t, append(argv, args...))
	stopAtEnd(t, g)
	f := &fallbackGaffer{gafferRun: g, pid: g.cmd.Process.Pid, env: env}
	if pid1 {
		testutil.WaitFor(t, 10*time.Second, "gaffer as PID 1 of the namespace", func() bool {
			kids := childrenOf(g.cmd.Process.Pid)
			if len(kids) != 1 {
				return false
			}
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", kids[0]))
			f.pid = kids[0]
			return exe == "/run/gaffer"
		})
	}
	return f
}

// client runs gaffer ARGS as uid 65534 (as root with asRoot) in gaffer's mount namespace, with
// gaffer's environment and no flags besides args.
func (f *fallbackGaffer) client(asRoot bool, args ...string) (int, string, string) {
	f.t.Helper()
	argv := append([]string{"nsenter", "-t", fmt.Sprint(f.pid), "-m", "--", "env", "-u", "XDG_RUNTIME_DIR", "-u", "TMPDIR", "-u", "GAFFER_SOCKET"}, f.env...)
	if !asRoot {
		argv = append(argv, nobody...)
	}
	return runProc(f.t, nil, append(append(argv, "/run/gaffer"), args...)...)
}

// root is a path in gaffer's mount namespace, as seen from here.
func (f *fallbackGaffer) root(path string) string {
	return fmt.Sprintf("/proc/%d/root%s", f.pid, path)
}

// waitStderr waits until gaffer's stderr has a whole line and returns what it wrote.
func (f *fallbackGaffer) waitStderr() string {
	f.t.Helper()
	testutil.WaitFor(f.t, 10*time.Second, "gaffer's line about its socket", func() bool {
		select {
		case <-f.done:
			f.t.Fatalf("gaffer exited %d; stderr %q", f.code, f.stderr.String())
		default:
		}
		return strings.Contains(f.stderr.String(), "\n")
	})
	return f.stderr.String()
}

// TestSocketFallback: gaffer up as uid 65534 falls back to /tmp/gaffer-65534 (made 0700), says
// where in one line, and reports it in /v1/info; gaffer health and gaffer status of the same uid
// find it with no flags, also past a stale /run/gaffer.sock left by root; the socket goes at exit.
func TestSocketFallback(t *testing.T) {
	f := startFallback(t, false, nil, "true", "up", "-c", "/run/gaffer.toml")
	if got, want := f.waitStderr(), "gaffer: API socket at /tmp/gaffer-65534/gaffer.sock (/run/gaffer.sock: permission denied)\n"; got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}
	(&apiGaffer{gafferRun: f.gafferRun}).expectOutput("worker", "up")
	var st syscall.Stat_t
	if err := syscall.Lstat(f.root("/tmp/gaffer-65534"), &st); err != nil || st.Mode != syscall.S_IFDIR|0o700 || st.Uid != 65534 {
		t.Errorf("/tmp/gaffer-65534: mode %o uid %d %v; want a 0700 directory of uid 65534", st.Mode, st.Uid, err)
	}
	sock := f.root("/tmp/gaffer-65534/gaffer.sock")
	if code, body := curl(t, sock, "GET", "/v1/info", nil); code != 200 || !strings.Contains(body, `"socket":"/tmp/gaffer-65534/gaffer.sock"`) {
		t.Errorf("/v1/info: %d %s", code, body)
	}

	checkClients := func(what string) {
		t.Helper()
		code, out, errs := f.client(false, "health")
		if code != 0 || !strings.HasPrefix(out, "healthy (alive") || errs != "" {
			t.Errorf("%s: gaffer health as uid 65534: exit %d, stdout %q, stderr %q", what, code, out, errs)
		}
		code, out, errs = f.client(false, "status")
		if code != 0 || !strings.Contains(out, "\nworker ") || errs != "" {
			t.Errorf("%s: gaffer status as uid 65534: exit %d, stdout %q, stderr %q", what, code, out, errs)
		}
	}
	checkClients("no /run/gaffer.sock")
	// A stale socket of root's at the default path does not hide the live fallback.
	staleSocket(t, f.root("/run/gaffer.sock"))
	checkClients("a stale /run/gaffer.sock")
	// root looks in /tmp/gaffer-0, not in another uid's directory: it is told about the stale one.
	code, out, errs := f.client(true, "health")
	if want := "error: cannot reach gaffer at /run/gaffer.sock: connection refused\n"; code != 2 || out != want || errs != "" {
		t.Errorf("gaffer health as root: exit %d, stdout %q, stderr %q; want 2, %q", code, out, errs, want)
	}
	if code, out, _ := f.client(true, "health", "--socket", "/tmp/gaffer-65534/gaffer.sock"); code != 0 {
		t.Errorf("gaffer health --socket as root: exit %d %q", code, out)
	}

	f.signal(syscall.SIGTERM)
	if code := f.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d; stderr %q", code, f.stderr.String())
	}
}

// TestSocketFallbackXDG: $XDG_RUNTIME_DIR comes before /tmp, for gaffer and its clients.
func TestSocketFallbackXDG(t *testing.T) {
	env := []string{"XDG_RUNTIME_DIR=/run/user/65534"}
	f := startFallback(t, false, env, "mkdir -p -m 0700 /run/user/65534 && chown 65534:65534 /run/user/65534", "up", "-c", "/run/gaffer.toml")
	if got, want := f.waitStderr(), "gaffer: API socket at /run/user/65534/gaffer.sock (/run/gaffer.sock: permission denied)\n"; got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}
	if code, out, errs := f.client(false, "health"); code != 0 || errs != "" {
		t.Errorf("gaffer health as uid 65534: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, err := os.Lstat(f.root("/tmp/gaffer-65534")); !os.IsNotExist(err) {
		t.Errorf("/tmp/gaffer-65534 made although $XDG_RUNTIME_DIR served: %v", err)
	}
}

// TestSocketFallbackRunMode: gaffer -- CMD as PID 1 (uid 65534) falls back the same way.
func TestSocketFallbackRunMode(t *testing.T) {
	f := startFallback(t, true, nil, "true", "--", "sleep", "1000")
	if got, want := f.waitStderr(), "gaffer: API socket at /tmp/gaffer-65534/gaffer.sock (/run/gaffer.sock: permission denied)\n"; got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}
	code, out, errs := f.client(false, "health", "--level", "ready", "main")
	if code != 0 || out != "healthy (ready: main)\n" || errs != "" {
		t.Errorf("gaffer health as uid 65534: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// unshare does not forward signals: stop gaffer itself, and unshare exits with it.
	if err := syscall.Kill(f.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := f.wait(10 * time.Second); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit %d, want the child's 143; stderr %q", code, f.stderr.String())
	}
}

// TestSocketFallbackHostile: a /tmp/gaffer-65534 prepared by someone else (another uid's, a
// symbolic link, writable by others) is refused with one line and left as it is; gaffer runs on
// without a socket, and its clients refuse the directory too, even with a live socket in it.
func TestSocketFallbackHostile(t *testing.T) {
	for _, tt := range []struct {
		name, setup, why string
	}{
		{"another uid's", "mkdir -m 0700 /tmp/gaffer-65534 && chown 1000:1000 /tmp/gaffer-65534",
			"refusing /tmp/gaffer-65534: it belongs to uid 1000, not to gaffer's uid 65534"},
		{"a symbolic link", "mkdir -m 0700 /tmp/target && chown 65534:65534 /tmp/target && ln -s /tmp/target /tmp/gaffer-65534",
			"refusing /tmp/gaffer-65534: a symbolic link (not followed)"},
		{"writable by others", "mkdir -m 0777 /tmp/gaffer-65534 && chown 65534:65534 /tmp/gaffer-65534",
			"refusing /tmp/gaffer-65534: others may write it (mode 0777)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := startFallback(t, false, nil, tt.setup, "up", "-c", "/run/gaffer.toml")
			want := "gaffer: no API socket: /run/gaffer.sock: permission denied; " + tt.why + "\n"
			if got := f.waitStderr(); got != want {
				t.Fatalf("stderr %q, want %q", got, want)
			}
			(&apiGaffer{gafferRun: f.gafferRun}).expectOutput("worker", "up")
			var before syscall.Stat_t
			if err := syscall.Lstat(f.root("/tmp/gaffer-65534"), &before); err != nil {
				t.Fatal(err)
			}
			// Someone's socket in the refused directory: the client must not talk to it.
			var decoy *net.UnixListener
			if before.Mode&syscall.S_IFMT == syscall.S_IFDIR {
				ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: f.root("/tmp/gaffer-65534/gaffer.sock"), Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				decoy = ln
			}
			code, out, errs := f.client(false, "health")
			if code != 2 || out != "error: "+tt.why+"\n" || errs != "" {
				t.Errorf("gaffer health: exit %d, stdout %q, stderr %q; want 2, %q", code, out, errs, "error: "+tt.why)
			}
			code, _, errs = f.client(false, "status")
			oneLineError(t, "gaffer status", code, errs, 1, tt.why)
			if decoy != nil {
				decoy.SetDeadline(time.Now())
				if c, err := decoy.Accept(); err == nil {
					c.Close()
					t.Errorf("a client connected to the socket in the refused directory")
				}
				decoy.Close()
				os.Remove(f.root("/tmp/gaffer-65534/gaffer.sock"))
			}
			var after syscall.Stat_t
			if err := syscall.Lstat(f.root("/tmp/gaffer-65534"), &after); err != nil || after.Ino != before.Ino || after.Mode != before.Mode || after.Uid != before.Uid {
				t.Errorf("/tmp/gaffer-65534 changed: %v", err)
			}
			if ents, _ := os.ReadDir(f.root("/tmp/target")); len(ents) != 0 {
				t.Errorf("created in the symlink's target: %v", ents)
			}
			if ents, _ := os.ReadDir(f.root("/tmp")); len(ents) > 2 {
				t.Errorf("/tmp: %v", ents)
			}
		})
	}
}

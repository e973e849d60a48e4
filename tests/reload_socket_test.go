package tests

// Black-box tests of a reload of the API socket's settings (issue 12): `gaffer up` as PID 1 of a
// new PID namespace changes the live socket's mode and group and the uids it serves when
// socket_mode, socket_group and socket_allow_uids change, without restarting anything; a follower
// of a uid no longer allowed is cut; flags still win; a file swapped in at the socket's path is
// never touched.

import (
	"gaffer/internal/testutil"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sockReloadWait bounds every wait of these tests: the machine may be loaded.
const sockReloadWait = 30 * time.Second

// sockReloadProcs are the processes of these tests: web echoes its stdin, worker sleeps.
const sockReloadProcs = echoWeb + sleepWorker

// sockReloadToml is the gaffer.toml of these tests with more [settings] keys.
func sockReloadToml(dir, settings string) string {
	return "[settings]\nsocket = \"" + filepath.Join(dir, "g.sock") + "\"\n" + settings + "\n" + sockReloadProcs
}

// sockReloadUp starts `gaffer up ARGS` as PID 1 with settings and waits until its socket answers
// and both processes run; its directory and the one above are searchable by everyone.
func sockReloadUp(t *testing.T, settings string, args ...string) *apiGaffer {
	t.Helper()
	g, dir := startUp(t, true, map[string]string{"gaffer.toml": sockReloadToml("{dir}", settings)}, args...)
	a := &apiGaffer{gafferRun: g, dir: dir, sock: filepath.Join(dir, "g.sock")}
	stopAtEnd(t, g)
	openDirs(t, dir)
	testutil.WaitFor(t, sockReloadWait, "the API socket and both processes", func() bool {
		select {
		case <-a.done:
			t.Fatalf("gaffer exited (%d) before its socket answered; stderr: %s", a.code, a.stderr.String())
		default:
		}
		code, _, err := httpDo(a.sock, "GET", "/v1/info", nil)
		return err == nil && code == 200 && len(sockReloadPids(a)) == 2
	})
	return a
}

// sockReloadPids are the pids of the running processes, by name.
func sockReloadPids(a *apiGaffer) map[string]int {
	m := map[string]int{}
	for _, p := range a.processes() {
		if p.Pid != 0 && p.State == "running" {
			m[p.Name] = p.Pid
		}
	}
	return m
}

// sockReload rewrites gaffer.toml with settings (by a rename) and runs `gaffer reload` against
// the socket at sock, which must succeed.
func sockReload(a *apiGaffer, sock, settings string) {
	a.t.Helper()
	tmp := filepath.Join(a.dir, ".gaffer.toml.new")
	if err := os.WriteFile(tmp, []byte(sockReloadToml(a.dir, settings)), 0o644); err != nil {
		a.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(a.dir, "gaffer.toml")); err != nil {
		a.t.Fatal(err)
	}
	if code, out, errs := ctl(a.t, sock, nil, "reload"); code != 0 {
		a.t.Fatalf("gaffer reload: exit %d; stdout %q; stderr %q; gaffer's stderr: %s", code, out, errs, a.stderr.String())
	}
}

// sockMode checks the socket file's permission bits and group.
func sockMode(t *testing.T, path string, mode, gid uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != syscall.S_IFSOCK|mode || st.Gid != gid || st.Uid != 0 {
		t.Errorf("%s: mode %o uid %d gid %d; want a socket, %04o, uid 0, gid %d", path, st.Mode, st.Uid, st.Gid, mode, gid)
	}
}

// statusAsNobody runs `gaffer status` as uid 65534 (group nogroup, no other groups).
func statusAsNobody(t *testing.T, sock string) (int, string, string) {
	t.Helper()
	return runProc(t, nil, append(asUID(65534), gafferBin, "status", "--socket", sock)...)
}

// TestReloadSocketAccess: socket_mode 0600, then a reload to 0660 with socket_group nogroup
// changes the live socket file (uid nobody may now connect, and is refused by the peer check);
// a reload adding socket_allow_uids = [65534] lets nobody's `gaffer status` through and its
// `gaffer logs -f` follow; a reload removing it cuts that follower (an error, not a normal end)
// and refuses nobody again; removing socket_mode and socket_group goes back to 0600 and gaffer's
// own group. The processes keep their pids, and gaffer warns of nothing.
func TestReloadSocketAccess(t *testing.T) {
	needRoot(t)
	a := sockReloadUp(t, `socket_mode = "0600"`)
	pids := sockReloadPids(a)
	sockMode(t, a.sock, 0o600, 0)
	if code, _, errs := statusAsNobody(t, a.sock); code == 0 || !strings.Contains(errs, "permission denied") {
		t.Errorf("status as nobody on a 0600 socket: exit %d, stderr %q; want permission denied", code, errs)
	}

	sockReload(a, a.sock, "socket_mode = \"0660\"\nsocket_group = \"nogroup\"")
	sockMode(t, a.sock, 0o660, 65534)
	code, _, errs := statusAsNobody(t, a.sock)
	oneLineError(t, "status as nobody, not allowed", code, errs, 1, "uid not allowed by socket_allow_uids")

	allowed := "socket_mode = \"0660\"\nsocket_group = \"nogroup\"\nsocket_allow_uids = [65534]"
	sockReload(a, a.sock, allowed)
	sockMode(t, a.sock, 0o660, 65534)
	code, out, errs := statusAsNobody(t, a.sock)
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "worker") {
		t.Fatalf("status as nobody, allowed: exit %d; stdout %q; stderr %q", code, out, errs)
	}
	f := follow(t, append(asUID(65534), gafferBin, "logs", "-f", "--socket", a.sock, "web")...)
	mustCtl(t, a.sock, "send", "web", "hello")
	f.expect("got hello", sockReloadWait) // the tail or the stream: nobody's connection is served

	sockReload(a, a.sock, "socket_mode = \"0660\"\nsocket_group = \"nogroup\"")
	if code := f.wait(sockReloadWait); code != 1 || !strings.Contains(f.errb.String(), "closed the connection") {
		t.Errorf("nobody's gaffer logs -f after its uid was removed: exit %d, stderr %q; want 1, the connection closed", code, f.errb.String())
	}
	code, _, errs = statusAsNobody(t, a.sock)
	oneLineError(t, "status as nobody, no longer allowed", code, errs, 1, "uid not allowed by socket_allow_uids")

	sockReload(a, a.sock, "")
	sockMode(t, a.sock, 0o600, 0)
	if code, _, errs := statusAsNobody(t, a.sock); code == 0 || !strings.Contains(errs, "permission denied") {
		t.Errorf("status as nobody on 0600 again: exit %d, stderr %q", code, errs)
	}
	if got := sockReloadPids(a); !maps.Equal(got, pids) {
		t.Errorf("pids %v after the reloads, were %v", got, pids)
	}
	if s := a.stderr.String(); strings.Contains(s, "API socket") {
		t.Errorf("gaffer warned: %s", s)
	}
}

// TestReloadSocketFlagsWin: --socket-mode and --socket-allow-uid still apply after a reload
// changes socket_mode and socket_allow_uids; socket_group, given by no flag, changes.
func TestReloadSocketFlagsWin(t *testing.T) {
	needRoot(t)
	a := sockReloadUp(t, "", "--socket-mode", "0660", "--socket-allow-uid", "65534")
	sockMode(t, a.sock, 0o660, 0)
	sockReload(a, a.sock, "socket_mode = \"0600\"\nsocket_group = \"nogroup\"\nsocket_allow_uids = [65533]")
	sockMode(t, a.sock, 0o660, 65534)
	if code, out, errs := statusAsNobody(t, a.sock); code != 0 {
		t.Errorf("status as nobody, allowed by the flag: exit %d; stdout %q; stderr %q", code, out, errs)
	}
}

// TestReloadSocketSwapped: when a symlink to a root-only file has taken the socket's path, a
// reload that changes socket_mode and socket_group touches neither the link nor its target: it
// is applied otherwise (exit 0), and gaffer says in one line on its stderr that the socket's
// permissions are unchanged. The socket, renamed away, keeps serving with its old mode.
func TestReloadSocketSwapped(t *testing.T) {
	needRoot(t)
	a := sockReloadUp(t, `socket_mode = "0600"`)
	file, intact := secret(t)
	away := filepath.Join(a.dir, "away.sock")
	if err := os.Rename(a.sock, away); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, a.sock); err != nil {
		t.Fatal(err)
	}
	sockReload(a, away, "socket_mode = \"0666\"\nsocket_group = \"nogroup\"")
	want := "gaffer: reload: API socket: refusing to change socket " + a.sock + ": a symbolic link (not followed) is at its path now, not the socket gaffer made (the file keeps its mode and group; allowed uids changed)\n"
	testutil.WaitFor(t, sockReloadWait, "gaffer's warning", func() bool { return strings.Contains(a.stderr.String(), want) })
	intact()
	if l, err := os.Readlink(a.sock); err != nil || l != file {
		t.Errorf("the symlink: %q %v", l, err)
	}
	sockMode(t, away, 0o600, 0)
	mustCtl(t, away, "status")
}

package tests

// Black-box tests of the systemd protocols in `gaffer up` (issue 10) with real clients: python3's
// systemd.daemon (notify, listen_fds, which checks LISTEN_PID), systemd-notify (which sends as its
// parent and waits on a barrier), socat. Everything listens on loopback or in the test's directory.

import (
	"bufio"
	"errors"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// python is Debian's, where python3-systemd is installed.
const python = "/usr/bin/python3"

// needNotifyClients skips without python3-systemd, systemd-notify or socat, except in CI.
func needNotifyClients(t *testing.T) {
	t.Helper()
	var missing []string
	if err := exec.Command(python, "-c", "import systemd.daemon").Run(); err != nil {
		missing = append(missing, "python3-systemd")
	}
	for _, tool := range []string{"systemd-notify", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if inCI() {
		t.Fatalf("needs %v; CI installs python3-systemd, socat and systemd", missing)
	}
	t.Skipf("needs %v (apt-get install -y python3-systemd socat systemd); CI runs it", missing)
}

// notifyUp starts `gaffer up` (not PID 1) with files (gaffer.toml and scripts; {dir} is the test's
// directory), the API on {dir}/g.sock, and waits until it answers.
func notifyUp(t *testing.T, files map[string]string) *apiGaffer {
	t.Helper()
	files["gaffer.toml"] = "[settings]\nsocket = \"{dir}/g.sock\"\n" + files["gaffer.toml"]
	g, dir := startUp(t, false, files)
	a := &apiGaffer{gafferRun: g, dir: dir, sock: filepath.Join(dir, "g.sock")}
	stopAtEnd(t, g)
	a.waitAPI()
	return a
}

// awaitLines reads gaffer's stdout until, for each of want, a line "name | text" starting with it
// has come (names unpadded), and returns every line read so far, normalized, in order.
func (a *apiGaffer) awaitLines(d time.Duration, want ...string) []string {
	a.t.Helper()
	var seen []string
	deadline := time.After(d)
	for {
		left := 0
		for _, w := range want {
			if lineIndex(seen, w) < 0 {
				left++
			}
		}
		if left == 0 {
			return seen
		}
		select {
		case l, ok := <-a.lines:
			if !ok {
				a.t.Fatalf("stdout closed waiting for %q; saw:\n%s\nstderr %s", want, strings.Join(seen, "\n"), a.stderr.String())
			}
			if n, x, ok := split(l); ok {
				l = n + " | " + x
			}
			seen = append(seen, l)
		case <-deadline:
			a.t.Fatalf("no lines %q within %v; saw:\n%s\nstderr %s", want, d, strings.Join(seen, "\n"), a.stderr.String())
		}
	}
}

// lineIndex is the position of the first of lines that starts with prefix, or -1.
func lineIndex(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}

// notifyProc is what these tests read of a process in the API.
type notifyProc struct {
	Pid        int    `json:"pid"`
	State      string `json:"state"`
	Restarts   int    `json:"restarts"`
	StatusText string `json:"status_text"`
}

func (a *apiGaffer) notifyProc(name string) notifyProc {
	a.t.Helper()
	var p notifyProc
	a.get("/v1/processes/"+name, &p)
	return p
}

// waitProc waits until cond holds for the process name.
func (a *apiGaffer) waitProc(name, what string, cond func(notifyProc) bool) notifyProc {
	a.t.Helper()
	var p notifyProc
	testutil.WaitFor(a.t, 30*time.Second, name+" "+what, func() bool {
		p = a.notifyProc(name)
		return cond(p)
	})
	return p
}

// TestNotifyReadyGatesDependent: READY=1 (python's systemd.daemon.notify, and systemd-notify from
// a shell script) makes a process ready; a dependent starts only then; STATUS= is an event line,
// status_text in the API and a column of gaffer status.
func TestNotifyReadyGatesDependent(t *testing.T) {
	needNotifyClients(t)
	a := notifyUp(t, map[string]string{
		"db.py": `import time, systemd.daemon as d
d.notify("STATUS=warming up")
time.sleep(1)
d.notify("READY=1\nSTATUS=serving")
time.sleep(1000)
`,
		"gaffer.toml": `
[process.db]
cmd = ["` + python + `", "{dir}/db.py"]
ready = "notify"
[process.web]
cmd = ["sh", "-c", "echo web up; exec sleep 1000"]
after = ["db"]
[process.sh]
cmd = ["sh", "-c", "systemd-notify --status='from a shell' && systemd-notify --ready && exec sleep 1000"]
ready = "notify"
`,
	})
	lines := a.awaitLines(30*time.Second, "gaffer | db status: warming up", "gaffer | db ready", "web | web up",
		"gaffer | sh status: from a shell", "gaffer | sh ready")
	if !(lineIndex(lines, "gaffer | db status: warming up") < lineIndex(lines, "gaffer | db ready") &&
		lineIndex(lines, "gaffer | db ready") < lineIndex(lines, "gaffer | web started")) {
		t.Fatalf("web started before db was ready:\n%s", strings.Join(lines, "\n"))
	}
	if p := a.notifyProc("db"); p.StatusText != "serving" || p.State != "ready" {
		t.Errorf("db in the API: %+v", p)
	}
	out := mustCtl(t, a.sock, "status")
	rows := strings.Split(out, "\n")
	if !strings.HasSuffix(rows[0], "STATUS") {
		t.Fatalf("no STATUS column:\n%s", out)
	}
	for _, r := range rows {
		f := strings.Fields(r)
		if len(f) > 0 && (f[0] == "db" && !strings.HasSuffix(r, " serving") || f[0] == "sh" && !strings.HasSuffix(r, " from a shell")) {
			t.Errorf("status row %q", r)
		}
	}
}

// environPid reads one variable of a process's environment.
func environOf(t *testing.T, pid int, key string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestNotifyForkedWorkerAndStranger: a message from a process outside gaffer's tree (systemd-notify
// run by the test with the socket's address) is ignored and counted; one from a worker the process
// forked counts.
func TestNotifyForkedWorkerAndStranger(t *testing.T) {
	needNotifyClients(t)
	a := notifyUp(t, map[string]string{
		"db.py": `import os, sys, time, systemd.daemon as d
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
if os.fork() == 0:
    d.notify("STATUS=worker %d\nREADY=1" % os.getpid())
    time.sleep(1000)
    os._exit(0)
os.wait()
`,
		"gaffer.toml": `
[process.db]
cmd = ["` + python + `", "{dir}/db.py", "{dir}/go"]
ready = "notify"
`,
	})
	db := a.waitProc("db", "starting", func(p notifyProc) bool { return p.State == "starting" && p.Pid > 0 })
	addr := environOf(t, db.Pid, "NOTIFY_SOCKET")
	if !strings.HasPrefix(addr, "@gaffer-") {
		t.Fatalf("NOTIFY_SOCKET=%q", addr)
	}
	var info struct {
		NotifyIgnored int `json:"notify_ignored"`
	}
	a.get("/v1/info", &info)
	before := info.NotifyIgnored
	cmd := exec.Command("systemd-notify", "--ready", "--status=stranger")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+addr)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-notify: %v %s", err, out)
	}
	testutil.WaitFor(t, 30*time.Second, "the stranger's message counted", func() bool {
		a.get("/v1/info", &info)
		return info.NotifyIgnored > before
	})
	if p := a.notifyProc("db"); p.State != "starting" || p.StatusText != "" {
		t.Fatalf("a stranger's message counted: %+v", p)
	}
	if err := os.WriteFile(filepath.Join(a.dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := a.waitProc("db", "ready", func(p notifyProc) bool { return p.State == "ready" })
	var worker int
	if _, err := fmt.Sscanf(p.StatusText, "worker %d", &worker); err != nil || worker == db.Pid {
		t.Fatalf("status %q: want the worker's, not %d's", p.StatusText, db.Pid)
	}
}

// TestNotifyMainPID: MAINPID (systemd-notify --pid) switches the supervised pid. A wrapper that
// waits: when the main process dies, the wrapper is supervised again and its exit (the main
// process's code) is the instance's. A forking daemon: the started process exits, the main process
// goes on, and its exit, reaped by gaffer, is the instance's with its code.
func TestNotifyMainPID(t *testing.T) {
	needNotifyClients(t)
	a := notifyUp(t, map[string]string{"gaffer.toml": `
[process.wrap]
cmd = ["sh", "-c", "sleep 1000 & systemd-notify --pid=$! --ready --status=wrapped; wait $!; exit $?"]
ready = "notify"
on_end = "ignore"
[process.fork]
cmd = ["sh", "-c", "sleep 1000 & systemd-notify --pid=$! --ready; exit 0"]
ready = "notify"
on_end = "ignore"
[process.keep]
cmd = ["sleep", "1000"]
`})
	lines := a.awaitLines(30*time.Second, "gaffer | wrap main process is now ", "gaffer | fork main process is now ",
		"gaffer | fork: process ")
	var wrapMain, forkMain int
	fmt.Sscanf(lines[lineIndex(lines, "gaffer | wrap main process is now ")], "gaffer | wrap main process is now %d", &wrapMain)
	fmt.Sscanf(lines[lineIndex(lines, "gaffer | fork main process is now ")], "gaffer | fork main process is now %d", &forkMain)
	for name, pid := range map[string]int{"wrap": wrapMain, "fork": forkMain} {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "sleep" {
			t.Fatalf("%s's main process %d is %q, want the sleep", name, pid, comm)
		}
		if p := a.notifyProc(name); p.Pid != pid || p.State != "ready" {
			t.Fatalf("%s in the API: %+v, want pid %d", name, p, pid)
		}
	}
	if l := lines[lineIndex(lines, "gaffer | fork: process ")]; !strings.Contains(l, "exited with code 0; main process "+strconv.Itoa(forkMain)+" goes on") {
		t.Fatalf("line %q", l)
	}
	// The forking daemon's main process is gaffer's orphan now: its code is known.
	if err := syscall.Kill(forkMain, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a.awaitLines(30*time.Second, "gaffer | fork exited with code 143")
	// The wrapper's: the wrapper exits with its code.
	if err := syscall.Kill(wrapMain, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.awaitLines(30*time.Second, "gaffer | wrap exited with code 137")
}

// TestNotifyExtendTimeout: EXTEND_TIMEOUT_USEC keeps a process that is slow to become ready from
// its ready_timeout; the same process without it is stopped.
func TestNotifyExtendTimeout(t *testing.T) {
	needNotifyClients(t)
	script := `import sys, time, systemd.daemon as d
if sys.argv[1] == "extend":
    d.notify("EXTEND_TIMEOUT_USEC=30000000")
time.sleep(5)
d.notify("READY=1")
time.sleep(1000)
`
	a := notifyUp(t, map[string]string{"slow.py": script, "gaffer.toml": `
[process.ext]
cmd = ["` + python + `", "{dir}/slow.py", "extend"]
ready = "notify"
ready_timeout = "3s"
on_end = "ignore"
[process.noext]
cmd = ["` + python + `", "{dir}/slow.py", "no"]
ready = "notify"
ready_timeout = "3s"
on_end = "ignore"
`})
	lines := a.awaitLines(30*time.Second, "gaffer | ext ready", "gaffer | noext not ready after 3s")
	if lineIndex(lines, "gaffer | ext not ready") >= 0 {
		t.Fatalf("ext timed out:\n%s", strings.Join(lines, "\n"))
	}
}

// TestNotifyWatchdog: WATCHDOG_USEC and WATCHDOG_PID are right in the process; one that keeps
// pinging is left alone, one that stops is restarted ("no ping for 2s"), WATCHDOG=trigger restarts
// at once.
func TestNotifyWatchdog(t *testing.T) {
	needNotifyClients(t)
	a := notifyUp(t, map[string]string{
		"ping.py": `import os, sys, time, systemd.daemon as d
ok = os.environ.get("WATCHDOG_PID") == str(os.getpid()) and os.environ.get("WATCHDOG_USEC") == "2000000"
print("env", "ok" if ok else "wrong: %s %s" % (os.environ.get("WATCHDOG_PID"), os.environ.get("WATCHDOG_USEC")), flush=True)
until = time.time() + float(sys.argv[1])
while time.time() < until:
    d.notify("WATCHDOG=1")
    time.sleep(0.1)
time.sleep(1000)
`,
		"trigger.py": `import time, systemd.daemon as d
time.sleep(0.5)
d.notify("WATCHDOG=trigger")
time.sleep(1000)
`,
		"gaffer.toml": `
[process.keep]
cmd = ["` + python + `", "{dir}/ping.py", "1000"]
watchdog = "2s"
[process.stop]
cmd = ["` + python + `", "{dir}/ping.py", "1"]
watchdog = "2s"
[process.trig]
cmd = ["` + python + `", "{dir}/trigger.py"]
watchdog = "30s"
`,
	})
	lines := a.awaitLines(60*time.Second, "keep | env ok", "stop | env ok", "gaffer | stop watchdog: no ping for 2s",
		"gaffer | stop restarting in 1s", "gaffer | trig watchdog: triggered by the process", "gaffer | trig restarting in 1s")
	// And its next run too, while keep goes on pinging.
	lines = append(lines, a.awaitLines(60*time.Second, "gaffer | stop watchdog: no ping for 2s")...)
	if i := lineIndex(lines, "gaffer | keep watchdog"); i >= 0 {
		t.Fatalf("keep pinged and was found unhealthy: %s", lines[i])
	}
	if p := a.notifyProc("stop"); p.Restarts < 1 {
		t.Fatalf("stop restarted %d times", p.Restarts)
	}
	if p := a.notifyProc("keep"); p.Restarts != 0 || p.State != "running" {
		t.Fatalf("keep: %+v", p)
	}
}

// server is a python socket-activated server: it prints what it found (LISTEN_PID, LISTEN_FDS,
// LISTEN_FDNAMES, its custom stream's fd) and answers each connection, or datagram, with
// "NAME PID UID".
const server = `import os, select, socket, sys, systemd.daemon as d
names = os.environ.get("LISTEN_FDNAMES", "").split(":")
lp = os.environ.get("LISTEN_PID")
fds = d.listen_fds()
print("found pid=%s listen_pid=%s fds=%s names=%s stream=%s" % (os.getpid() == int(lp or 0), lp == str(os.getpid()),
      fds, ":".join(names), os.environ.get("GAFFER_STREAM_EVENTS")), flush=True)
socks = {socket.socket(fileno=fd): names[i] for i, fd in enumerate(fds)}
served, limit = 0, int(sys.argv[1]) if len(sys.argv) > 1 else 0
while True:
    for s in select.select(list(socks), [], [])[0]:
        reply = ("%s %d %d\n" % (socks[s], os.getpid(), os.getuid())).encode()
        if s.type == socket.SOCK_DGRAM:
            _, peer = s.recvfrom(100)
            s.sendto(reply, peer)
        else:
            c, _ = s.accept()
            c.sendall(reply)
            c.close()
        served += 1
        if served == limit:
            sys.exit(1)
`

// ask connects to addr ("tcp" or "unix") and returns the first line of the answer.
func ask(network, addr string) (string, error) {
	c, err := net.DialTimeout(network, addr, 30*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return bufio.NewReader(c).ReadString('\n')
}

// TestSocketActivation: python's listen_fds (which checks LISTEN_PID) finds the TCP, Unix and UDP
// sockets at fd 3, 4, 5 with their names, the custom stream follows at fd 6; socat reaches each;
// the Unix socket file has the default mode (0777 less the umask); two instances share a socket.
func TestSocketActivation(t *testing.T) {
	needNotifyClients(t)
	port, udpPort, multiPort := freePort(t), freePort(t), freePort(t)
	a := notifyUp(t, map[string]string{"server.py": server, "gaffer.toml": fmt.Sprintf(`
[process.web]
cmd = ["%s", "{dir}/server.py"]
listen = ["tcp://127.0.0.1:%d", "unix://{dir}/web.sock", "udp://127.0.0.1:%d"]
listen_names = ["http", "control", "dns"]
custom_streams = ["events"]
[process.multi]
cmd = ["%s", "{dir}/server.py"]
listen = ["tcp://127.0.0.1:%d"]
numprocesses = 2
`, python, port, udpPort, python, multiPort)})
	lines := a.awaitLines(30*time.Second, "web | found ", "multi.1 | found ", "multi.2 | found ")
	if l := lines[lineIndex(lines, "web | found ")]; l != "web | found pid=True listen_pid=True fds=[3, 4, 5] names=http:control:dns stream=6" {
		t.Fatalf("web found: %q", l)
	}
	if l := lines[lineIndex(lines, "multi.1 | found ")]; l != "multi.1 | found pid=True listen_pid=True fds=[3] names=multi stream=None" {
		t.Fatalf("multi.1 found: %q", l)
	}
	web := a.notifyProc("web").Pid
	want := func(name string) string { return fmt.Sprintf("%s %d 0", name, web) }
	for _, c := range []struct{ argv []string }{
		{[]string{"socat", "-t", "10", "-", "TCP:127.0.0.1:" + strconv.Itoa(port)}},
		{[]string{"socat", "-t", "10", "-", "UNIX-CONNECT:" + filepath.Join(a.dir, "web.sock")}},
	} {
		code, out, errs := runProc(t, nil, c.argv...)
		if code != 0 || !(out == want("http")+"\n" || out == want("control")+"\n") {
			t.Fatalf("%q: exit %d, %q %q", c.argv, code, out, errs)
		}
	}
	// UDP with Go's client: socat would wait out its -t timeout for an end that never comes.
	uc, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(udpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	_ = uc.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 100)
	n := 0
	if _, err = uc.Write([]byte("ping")); err == nil {
		n, err = uc.Read(buf)
	}
	if err != nil || string(buf[:n]) != want("dns")+"\n" {
		t.Fatalf("udp: %q %v", buf[:n], err)
	}
	umask := syscall.Umask(0o022)
	syscall.Umask(umask)
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(a.dir, "web.sock"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != syscall.S_IFSOCK|(0o777&^uint32(umask)) || st.Uid != uint32(os.Getuid()) {
		t.Errorf("web.sock: mode %o uid %d, want %o (0777 less the umask) and gaffer's uid", st.Mode, st.Uid, 0o777&^umask)
	}
	// Both instances accept from the one socket.
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		l, err := ask("tcp", "127.0.0.1:"+strconv.Itoa(multiPort))
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.Fields(l)[1]] = true
	}
	if len(seen) != 2 {
		t.Fatalf("one instance served every connection: %v", seen)
	}
	// The socket file goes with gaffer.
	a.signal(syscall.SIGTERM)
	a.wait(30 * time.Second)
	if _, err := os.Lstat(filepath.Join(a.dir, "web.sock")); !os.IsNotExist(err) {
		t.Errorf("web.sock left behind: %v", err)
	}
}

// TestSocketActivationRestartRefusesNothing: a server that exits after every 10 connections is
// restarted over and over under four clients: connections that come while it is down wait in the
// backlog; none is refused, none is lost.
func TestSocketActivationRestartRefusesNothing(t *testing.T) {
	needNotifyClients(t)
	port := freePort(t)
	a := notifyUp(t, map[string]string{"server.py": server, "gaffer.toml": fmt.Sprintf(`
[process.web]
cmd = ["%s", "{dir}/server.py", "10"]
listen = ["tcp://127.0.0.1:%d"]
restart = "always"
backoff = "50ms"
backoff_max = "50ms"
`, python, port)})
	a.awaitLines(30*time.Second, "web | found ")
	const clients, each = 4, 50
	var mu sync.Mutex
	var refused, failed, answered int
	var firstErr error
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				l, err := ask("tcp", "127.0.0.1:"+strconv.Itoa(port))
				mu.Lock()
				switch {
				case errors.Is(err, syscall.ECONNREFUSED):
					refused++
				case err != nil || !strings.HasPrefix(l, "web "):
					failed++
					if firstErr == nil {
						firstErr = fmt.Errorf("%q %v", l, err)
					}
				default:
					answered++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	restarts := a.notifyProc("web").Restarts
	t.Logf("%d connections answered, %d refused, %d failed, across %d restarts", answered, refused, failed, restarts)
	if refused != 0 || failed != 0 || answered != clients*each {
		t.Fatalf("%d refused, %d failed (%v), %d answered of %d", refused, failed, firstErr, answered, clients*each)
	}
	if restarts < clients*each/10-1 {
		t.Fatalf("only %d restarts", restarts)
	}
}

// privilegedPort finds a loopback port under 1024 that nobody listens on.
func privilegedPort(t *testing.T) int {
	t.Helper()
	for p := 1023; p > 600; p-- {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port under 1024")
	return 0
}

// TestSocketActivationPrivilegedPortAsNobody: gaffer binds a port under 1024 and a Unix socket for
// a process that runs as nobody; the process serves on them (LISTEN_PID right after the switch of
// user), and the socket file belongs to nobody.
func TestSocketActivationPrivilegedPortAsNobody(t *testing.T) {
	needRoot(t)
	needNotifyClients(t)
	port := privilegedPort(t)
	sockDir := t.TempDir()
	if err := os.Chmod(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(sockDir, "nobody.sock")
	// The script is inline (a TOML literal string): nobody may not read the test's directory.
	a := notifyUp(t, map[string]string{"gaffer.toml": fmt.Sprintf(`
[process.low]
cmd = ["%s", "-c", '''
%s''']
user = "nobody"
listen = ["tcp://127.0.0.1:%d", "unix://%s"]
listen_mode = "0660"
`, python, server, port, sock)})
	a.awaitLines(30*time.Second, "low | found pid=True listen_pid=True fds=[3, 4]")
	pid := a.notifyProc("low").Pid
	for _, c := range [][2]string{{"tcp", "127.0.0.1:" + strconv.Itoa(port)}, {"unix", sock}} {
		l, err := ask(c[0], c[1])
		if err != nil || !strings.HasSuffix(l, fmt.Sprintf(" %d 65534\n", pid)) {
			t.Fatalf("%s: %q %v; want an answer from uid 65534", c[0], l, err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(sock, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != syscall.S_IFSOCK|0o660 || st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("nobody.sock: mode %o uid %d gid %d", st.Mode, st.Uid, st.Gid)
	}
}

// TestSocketActivationBindConflict: an address in use is an error naming the process and the
// address, exit 2, and nothing starts.
func TestSocketActivationBindConflict(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	g, _ := startUp(t, false, map[string]string{"gaffer.toml": fmt.Sprintf(`
[settings]
socket = ""
[process.first]
cmd = ["sleep", "1000"]
[process.web]
cmd = ["sleep", "1000"]
listen = ["tcp://127.0.0.1:%d"]
`, port)})
	out, _ := io.ReadAll(linesReader(g.lines))
	code := g.wait(30 * time.Second)
	want := fmt.Sprintf("gaffer: web: cannot listen on tcp://127.0.0.1:%d: address already in use\n", port)
	if code != 2 || g.stderr.String() != want || len(out) != 0 {
		t.Fatalf("exit %d, stderr %q, stdout %q; want 2, %q and nothing started", code, g.stderr.String(), out, want)
	}
}

// linesReader reads lines from ch until it is closed.
func linesReader(ch <-chan string) io.Reader {
	r, w := io.Pipe()
	go func() {
		for l := range ch {
			fmt.Fprintln(w, l)
		}
		w.Close()
	}()
	return r
}

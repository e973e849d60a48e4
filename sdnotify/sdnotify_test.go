package sdnotify

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// The shim test runs this binary as the shim.
	if len(os.Args) > 1 && os.Args[1] == ExecCommand {
		code, err := Exec(os.Args[2:])
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	m := Parse([]byte("READY=1\nSTATUS=Serving 3 clients\nMAINPID=4242\nEXTEND_TIMEOUT_USEC=5000000\nWATCHDOG=1\nWATCHDOG_USEC=30000000\nERRNO=2\nFDSTORE=1\nnoise\n"))
	want := Message{Ready: true, Status: "Serving 3 clients", HasStatus: true, MainPID: 4242, ExtendTimeout: 5 * time.Second,
		Watchdog: true, WatchdogTimeout: 30 * time.Second, HasWatchdogTimeout: true, Errno: 2}
	if m != want {
		t.Errorf("Parse = %+v\nwant %+v", m, want)
	}
	for _, tt := range []struct {
		in   string
		want Message
	}{
		{"", Message{Errno: -1}},
		{"READY=0\nRELOADING=1", Message{Reloading: true, Errno: -1}},
		{"STOPPING=1", Message{Stopping: true, Errno: -1}},
		{"STATUS=", Message{HasStatus: true, Errno: -1}},
		{"STATUS=a\tb\x1b[31m\xff", Message{Status: "a\uFFFDb\uFFFD[31m\uFFFD", HasStatus: true, Errno: -1}},
		{"STATUS=a=b", Message{Status: "a=b", HasStatus: true, Errno: -1}},
		{"WATCHDOG=trigger", Message{WatchdogTrigger: true, Errno: -1}},
		{"WATCHDOG=2", Message{Errno: -1}},
		{"WATCHDOG_USEC=0", Message{HasWatchdogTimeout: true, Errno: -1}},
		{"WATCHDOG_USEC=-1\nEXTEND_TIMEOUT_USEC=x\nMAINPID=1\nMAINPID=abc\nERRNO=-3", Message{Errno: -1}},
		{"WATCHDOG_USEC=99999999999999999999", Message{Errno: -1}},
		{"MAINPID=10\nMAINPID=11", Message{MainPID: 11, Errno: -1}},
		{"ready=1", Message{Errno: -1}},
	} {
		if got := Parse([]byte(tt.in)); got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func dial(t *testing.T, s *Socket) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.Addr(), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSocket: a message arrives with its sender's pid; one over MaxMessage is dropped; passed
// descriptors are closed at once (a barrier's sender sees its pipe hang up).
func TestSocket(t *testing.T) {
	s, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Addr(), "@gaffer-"+strconv.Itoa(os.Getpid())+"-") || !strings.HasSuffix(s.Addr(), "-notify") {
		t.Errorf("address %q", s.Addr())
	}
	c := dial(t, s)
	if _, err := c.Write([]byte("READY=1")); err != nil {
		t.Fatal(err)
	}
	d, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if d.Pid != os.Getpid() || d.UID != os.Getuid() || string(d.Data) != "READY=1" || d.Dropped != "" {
		t.Errorf("got %+v", d)
	}
	if _, err := c.Write([]byte(strings.Repeat("x", MaxMessage))); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Read(); d.Dropped != "" || len(d.Data) != MaxMessage {
		t.Errorf("a message of MaxMessage bytes: %q, %d bytes", d.Dropped, len(d.Data))
	}
	if _, err := c.Write([]byte(strings.Repeat("x", MaxMessage+1))); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Read(); d.Dropped != "too long" {
		t.Errorf("an oversize message: %+v", d.Dropped)
	}
	// A barrier: the write end of a pipe is passed, and closed by the reader.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Sendmsg(fd, []byte("BARRIER=1"), unix.UnixRights(p[1]), &unix.SockaddrUnix{Name: s.Addr()}, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(p[1])
	if d, _ := s.Read(); d.FDs != 1 || string(d.Data) != "BARRIER=1" {
		t.Errorf("barrier: %+v", d)
	}
	fds := []unix.PollFd{{Fd: int32(p[0]), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 5000); n != 1 || err != nil || fds[0].Revents&unix.POLLHUP == 0 {
		t.Errorf("the passed pipe end is still open: %d %v %#x", n, err, fds[0].Revents)
	}
	// Close ends a Read under way.
	done := make(chan error, 1)
	go func() { _, err := s.Read(); done <- err }()
	time.Sleep(10 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Read after Close: no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after Close")
	}
}

// TestLineagePidfd: a child's lineage reaches this process; a pidfd sees it exit (before anyone
// reaps it) and then refuses signals.
func TestLineagePidfd(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	chain, ok := Lineage(pid, os.Getpid())
	if !ok || len(chain) != 2 || chain[0] != pid || chain[1] != os.Getpid() {
		t.Errorf("Lineage = %v %v", chain, ok)
	}
	if chain, ok := Lineage(os.Getpid(), pid); ok || chain[0] != os.Getpid() {
		t.Errorf("Lineage up from here reached the child: %v", chain)
	}
	if _, ok := Lineage(1<<22+12345, os.Getpid()); ok {
		t.Error("a pid that does not exist reached gaffer")
	}
	p, err := OpenPidfd(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Exited() || p.Pgid() == 0 {
		t.Fatalf("exited %v pgid %d", p.Exited(), p.Pgid())
	}
	waited := make(chan error, 1)
	go func() { waited <- p.Wait() }()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
	}
	if !p.Exited() || p.Pgid() != 0 {
		t.Error("not seen as exited")
	}
	_ = cmd.Wait()
	if err := p.Signal(syscall.SIGTERM); err != os.ErrProcessDone {
		t.Errorf("signal after the exit: %v", err)
	}
	// Close ends a Wait under way.
	q, err := OpenPidfd(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	go func() { waited <- q.Wait() }()
	time.Sleep(10 * time.Millisecond)
	q.Close()
	select {
	case err := <-waited:
		if err == nil {
			t.Error("Wait after Close: no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after Close")
	}
}

// TestExecShim: the shim sets the variables to the pid of the program it executes (the same pid
// as the shim's own), and keeps the rest of the environment and the argv.
func TestExecShim(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := ExecArgv(self, []string{"LISTEN_PID", "WATCHDOG_PID"}, "/bin/sh", []string{"sh", "-c", `echo "$$ $LISTEN_PID $WATCHDOG_PID $KEEP $0 $1"`, "zero", "one"})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "KEEP=kept", "LISTEN_PID=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	want := []string{strconv.Itoa(cmd.Process.Pid), strconv.Itoa(cmd.Process.Pid), strconv.Itoa(cmd.Process.Pid), "kept", "zero", "one"}
	if strings.Join(f, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", f, want)
	}
	cmd = exec.Command(self, ExecCommand, "LISTEN_PID", "/nonexistent", "x")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 127 || !strings.Contains(stderr.String(), `cannot run "/nonexistent"`) {
		t.Errorf("missing program: %v, %q", err, stderr.String())
	}
}

package listen

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in, want, err string
	}{
		{"tcp://0.0.0.0:8080", "tcp://0.0.0.0:8080", ""},
		{"tcp://:8080", "tcp://:8080", ""},
		{"tcp://[::1]:80", "tcp://[::1]:80", ""},
		{"tcp://[::ffff:127.0.0.1]:80", "tcp://127.0.0.1:80", ""},
		{"udp://:5353", "udp://:5353", ""},
		{"udp://127.0.0.1:53", "udp://127.0.0.1:53", ""},
		{"unix:///run/web.sock", "unix:///run/web.sock", ""},
		{"unix:///run//x/../web.sock", "unix:///run/web.sock", ""},
		{"tcp://localhost:80", "", `"localhost" is not an IP address`},
		{"tcp://0.0.0.0", "", "want tcp://HOST:PORT"},
		{"tcp://:0", "", `port "0": want 1-65535`},
		{"tcp://:65536", "", "want 1-65535"},
		{"tcp://:80/x", "", "without a path"},
		{"tcp://u@:80", "", "and nothing more"},
		{"tcp://:80?x=1", "", "and nothing more"},
		{"tcp://[fe80::1%25eth0]:80", "", "not an IP address"},
		{"unix://run/web.sock", "", "want unix:///ABSOLUTE/PATH"},
		{"unix:relative", "", "want tcp://HOST:PORT"},
		{"unix:///", "", "not a file name"},
		{"unix:///" + strings.Repeat("x", 120), "", "path too long"},
		{"sctp://:80", "", `unknown kind "sctp"`},
		{"8080", "", "want tcp://HOST:PORT"},
		{"", "", "want tcp://HOST:PORT"},
	} {
		a, err := Parse(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) = %v, %v; want an error with %q", tt.in, a, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if a.String() != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, a.String(), tt.want)
		}
		if b, err := Parse(a.String()); err != nil || b != a {
			t.Errorf("round trip of %q: %v %v", tt.in, b, err)
		}
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"http": true, "web.socket": true, "a-b_c": true, strings.Repeat("x", 255): true,
		"": false, "a:b": false, "a b": false, "é": false, strings.Repeat("x", 256): false, "a\n": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v", name, got)
		}
	}
}

func mustOpen(t *testing.T, s string, o Options) *Socket {
	t.Helper()
	a, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	sock, err := Open(a, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sock.Close)
	return sock
}

// port returns the port a TCP or UDP socket is bound to.
func port(t *testing.T, s *Socket) int {
	t.Helper()
	sa, err := unix.Getsockname(int(s.File.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	t.Fatalf("not inet: %T", sa)
	return 0
}

// freePort finds a loopback TCP port nobody uses now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// TestOpenTCP: the socket listens as soon as Open returns (a client connects before anyone
// accepts), is blocking and close-on-exec; a second Open of the same address fails with the
// address in the message.
func TestOpenTCP(t *testing.T) {
	p := freePort(t)
	s := mustOpen(t, "tcp://127.0.0.1:"+p, Options{})
	c, err := net.Dial("tcp", "127.0.0.1:"+p)
	if err != nil {
		t.Fatalf("connect before accept: %v", err)
	}
	c.Close()
	flags, _ := unix.FcntlInt(s.File.Fd(), unix.F_GETFL, 0)
	if flags&unix.O_NONBLOCK != 0 {
		t.Error("non-blocking")
	}
	if fdf, _ := unix.FcntlInt(s.File.Fd(), unix.F_GETFD, 0); fdf&unix.FD_CLOEXEC == 0 {
		t.Error("not close-on-exec")
	}
	a, _ := Parse("tcp://127.0.0.1:" + p)
	_, err = Open(a, Options{})
	if err == nil || err.Error() != "cannot listen on tcp://127.0.0.1:"+p+": address already in use" || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Open: %v", err)
	}
}

// TestOpenEveryAddress: tcp://:PORT takes IPv4 and IPv6 on one socket.
func TestOpenEveryAddress(t *testing.T) {
	p := freePort(t)
	mustOpen(t, "tcp://:"+p, Options{})
	for _, addr := range []string{"127.0.0.1:" + p, "[::1]:" + p} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			if strings.Contains(addr, "::1") && errors.Is(err, syscall.EADDRNOTAVAIL) {
				continue // no IPv6 loopback here
			}
			t.Errorf("%s: %v", addr, err)
			continue
		}
		c.Close()
	}
}

func TestOpenUDP(t *testing.T) {
	s := mustOpen(t, "udp://127.0.0.1:"+freePort(t), Options{})
	p := port(t, s)
	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", itoa(p)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, _, err := unix.Recvfrom(int(s.File.Fd()), buf, 0)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("recv %q %v", buf[:n], err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestOpenUnix: the socket file has the mode and owner asked for, a live one is refused, a
// symlink at the path is never followed, and Close removes the file.
func TestOpenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.sock")
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		uid, gid = 65534, 65534
	}
	a, _ := Parse("unix://" + path)
	s, err := Open(a, Options{Mode: 0o660, UID: uid, GID: gid})
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != syscall.S_IFSOCK|0o660 || (uid >= 0 && (st.Uid != 65534 || st.Gid != 65534)) {
		t.Errorf("mode %o uid %d gid %d", st.Mode, st.Uid, st.Gid)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := Open(a, Options{Mode: 0o600, UID: -1, GID: -1}); err == nil || !strings.Contains(err.Error(), "something is listening") {
		t.Errorf("second Open: %v", err)
	}
	s.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("not removed: %v", err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, path); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(a, Options{Mode: 0o666, UID: -1, GID: -1}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a symlink: %v", err)
	}
	if fi, _ := os.Stat(secret); fi.Mode().Perm() != 0o600 {
		t.Errorf("the symlink's target changed: %v", fi.Mode())
	}
}

func TestEnvironAndUmask(t *testing.T) {
	if got := Environ([]string{"http", "dns"}); strings.Join(got, " ") != "LISTEN_FDS=2 LISTEN_FDNAMES=http:dns" {
		t.Errorf("Environ: %q", got)
	}
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	if got := Umask(); got != 0o027 {
		t.Errorf("Umask() = %o", got)
	}
}

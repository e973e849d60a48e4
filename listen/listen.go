// Package listen opens the sockets of socket activation: gaffer binds and listens on each address
// of a process's `listen` before the process starts, as gaffer (so a port under 1024 works for a
// process that runs as nobody), and keeps them open across restarts; the process inherits them as
// fd 3, 4, ... (sd_listen_fds). Unix socket files are made by package sockfile, with the API
// socket's rules against symlink swaps.
package listen

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gaffer/sockfile"

	"golang.org/x/sys/unix"
)

// Kinds of address.
const (
	TCP  = "tcp"  // a stream socket that listens
	UDP  = "udp"  // a datagram socket, bound
	Unix = "unix" // a Unix stream socket at a path, that listens
)

// Backlog is the listen backlog of stream sockets (the kernel caps it at net.core.somaxconn):
// connections that arrive while the process restarts wait there.
const Backlog = sockfile.DefaultBacklog

// Addr is one address of `listen`.
type Addr struct {
	Kind string     // TCP, UDP or Unix
	IP   netip.Addr // TCP and UDP: the address to bind; invalid for every address (IPv6 and IPv4)
	Port int        // TCP and UDP
	Path string     // Unix: an absolute, clean path
}

// Parse reads tcp://HOST:PORT, udp://HOST:PORT (HOST an IP address, [v6] in brackets, or empty
// for every address) or unix:///ABSOLUTE/PATH.
func Parse(s string) (Addr, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return Addr{}, fmt.Errorf("bad address %q: want tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return Addr{}, fmt.Errorf("address %q: want %s://... and nothing more", s, u.Scheme)
	}
	switch u.Scheme {
	case TCP, UDP:
		if u.Path != "" {
			return Addr{}, fmt.Errorf("address %q: want %s://HOST:PORT, without a path", s, u.Scheme)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			return Addr{}, fmt.Errorf("address %q: want %s://HOST:PORT (HOST may be empty: every address)", s, u.Scheme)
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Addr{}, fmt.Errorf("address %q: port %q: want 1-65535", s, port)
		}
		a := Addr{Kind: u.Scheme, Port: n}
		if host != "" {
			ip, err := netip.ParseAddr(host)
			if err != nil || ip.Zone() != "" {
				return Addr{}, fmt.Errorf("address %q: %q is not an IP address (names are not resolved; leave it empty for every address)", s, host)
			}
			a.IP = ip.Unmap()
		}
		return a, nil
	case Unix:
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return Addr{}, fmt.Errorf("address %q: want unix:///ABSOLUTE/PATH", s)
		}
		p := filepath.Clean(u.Path)
		if p == "/" {
			return Addr{}, fmt.Errorf("address %q: not a file name", s)
		}
		if len(p) > sockfile.MaxPath {
			return Addr{}, fmt.Errorf("address %q: path too long (%d bytes, at most %d)", s, len(p), sockfile.MaxPath)
		}
		return Addr{Kind: Unix, Path: p}, nil
	}
	return Addr{}, fmt.Errorf("address %q: unknown kind %q: want tcp, udp or unix", s, u.Scheme)
}

// String is the address as written in a config file; Parse reads it back.
func (a Addr) String() string {
	if a.Kind == Unix {
		return "unix://" + a.Path
	}
	host := ""
	if a.IP.IsValid() {
		host = a.IP.String()
	}
	return a.Kind + "://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// Options say how a Unix socket file is made; TCP and UDP sockets ignore them.
type Options struct {
	Mode os.FileMode // its permission bits
	UID  int         // its owner; -1 keeps gaffer's
	GID  int         // its group; -1 keeps gaffer's
}

// Socket is an open socket that gaffer holds for a process.
type Socket struct {
	Addr Addr
	// File is the socket: blocking, as a process that inherits it expects, and close-on-exec in
	// gaffer (the process gets its own copy at fd 3, 4, ...).
	File *os.File
	file *sockfile.File // the socket file of a Unix address
}

// Open binds a (and listens, for TCP and Unix). A TCP or UDP address without a host is every
// address: IPv6 and IPv4 on one socket, or IPv4 alone where IPv6 is missing.
func Open(a Addr, o Options) (*Socket, error) {
	if a.Kind == Unix {
		f, file, err := sockfile.Listen(a.Path, sockfile.Options{Mode: o.Mode, UID: o.UID, GID: o.GID, Backlog: Backlog})
		if err != nil {
			return nil, err
		}
		return &Socket{Addr: a, File: f, file: file}, nil
	}
	fd, err := openInet(a)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", a, err)
	}
	return &Socket{Addr: a, File: os.NewFile(uintptr(fd), a.String())}, nil
}

// openInet makes a's socket, bound (and listening for TCP).
func openInet(a Addr) (int, error) {
	typ := unix.SOCK_STREAM
	if a.Kind == UDP {
		typ = unix.SOCK_DGRAM
	}
	ip, dual := a.IP, false
	if !ip.IsValid() {
		ip, dual = netip.IPv6Unspecified(), true
	}
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if dual && (errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EPROTONOSUPPORT)) {
		// No IPv6 here: every address is every IPv4 address.
		ip, dual, family = netip.IPv4Unspecified(), false, unix.AF_INET
		fd, err = unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	if dual {
		// Whatever net.ipv6.bindv6only says: no host means IPv4 too.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return -1, err
		}
	}
	if typ == unix.SOCK_STREAM {
		// As systemd does: a restart of gaffer binds again while old connections linger in
		// TIME_WAIT.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return -1, err
		}
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: a.Port, Addr: ip.As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: a.Port, Addr: ip.As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, err
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, Backlog); err != nil {
			return -1, err
		}
	}
	ok = true
	return fd, nil
}

// Close closes the socket and removes its socket file, if it is still the one Open made.
func (s *Socket) Close() {
	if s == nil {
		return
	}
	if s.File != nil {
		s.File.Close()
	}
	s.file.Remove()
}

// ValidName reports whether name may be an fd name in LISTEN_FDNAMES, by systemd's rule: 1 to 255
// printable ASCII characters, no colon (the separator).
func ValidName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// Environ is what a process that gets n sockets named names (joined for LISTEN_FDNAMES) finds in
// its environment, but LISTEN_PID: that is the process's own pid, which only the process knows.
func Environ(names []string) []string {
	return []string{"LISTEN_FDS=" + strconv.Itoa(len(names)), "LISTEN_FDNAMES=" + strings.Join(names, ":")}
}

// Umask returns gaffer's umask, read from /proc/self/status (reading it with umask(2) would change
// it for a moment, for every thread); 022 when it cannot be read.
func Umask() os.FileMode {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return os.FileMode(n) & 0o777
				}
			}
		}
	}
	return 0o022
}

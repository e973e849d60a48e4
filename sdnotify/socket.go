package sdnotify

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Socket is gaffer's end of NOTIFY_SOCKET: an AF_UNIX datagram socket in the abstract namespace
// (no file, so nothing on disk to protect or remove; it goes with the socket), with SO_PASSCRED
// on, so that the kernel attaches every sender's pid, uid and gid.
type Socket struct {
	conn *net.UnixConn
	addr string
	buf  []byte
	oob  []byte
}

// oobFDs is how many passed descriptors one read takes in (and closes at once: gaffer keeps
// none); the kernel closes those that do not fit.
const oobFDs = 16

// Listen makes the socket, at an abstract address of its own ("@gaffer-PID-RANDOM-notify"): two
// gaffers that share a network namespace (a Kubernetes pod, --network host) both as PID 1 never
// collide.
func Listen() (*Socket, error) {
	var err error
	for range 8 {
		var b [6]byte
		if _, err = unix.Getrandom(b[:], 0); err != nil { // not crypto/rand: see sockfile
			break
		}
		addr := "@gaffer-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:]) + "-notify"
		var c *net.UnixConn
		c, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			break
		}
		if err = passCred(c); err != nil {
			c.Close()
			break
		}
		return &Socket{
			conn: c, addr: addr, buf: make([]byte, MaxMessage),
			oob: make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*oobFDs)),
		}, nil
	}
	return nil, fmt.Errorf("notify socket: %w", err)
}

func passCred(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	return serr
}

// Addr is the socket's address as NOTIFY_SOCKET holds it ("@..." for the abstract namespace,
// which libsystemd, python-systemd and systemd-notify understand).
func (s *Socket) Addr() string { return s.addr }

// Datagram is one message received.
type Datagram struct {
	Pid  int // the sender's pid, as the kernel reports it (0: from outside gaffer's PID namespace)
	UID  int
	Data []byte // valid until the next Read
	// Dropped says why the message is not to be used: "too long" (over MaxMessage), "no
	// credentials"; "" for a good one.
	Dropped string
	// FDs is how many descriptors came with it (a BARRIER=1, an FDSTORE=1): each was closed at
	// once, which is what sd_notify_barrier waits for.
	FDs int
}

// Read waits for the next datagram. It fails once the socket is closed.
func (s *Socket) Read() (Datagram, error) {
	n, oobn, flags, _, err := s.conn.ReadMsgUnix(s.buf, s.oob)
	if err != nil {
		return Datagram{}, err
	}
	d := Datagram{Pid: -1, Data: s.buf[:n]}
	if cmsgs, err := unix.ParseSocketControlMessage(s.oob[:oobn]); err == nil {
		for _, m := range cmsgs {
			if m.Header.Level != unix.SOL_SOCKET {
				continue
			}
			switch m.Header.Type {
			case unix.SCM_CREDENTIALS:
				if cred, err := unix.ParseUnixCredentials(&m); err == nil {
					d.Pid, d.UID = int(cred.Pid), int(cred.Uid)
				}
			case unix.SCM_RIGHTS:
				fds, _ := unix.ParseUnixRights(&m)
				for _, fd := range fds {
					unix.Close(fd)
				}
				d.FDs += len(fds)
			}
		}
	}
	switch {
	case flags&unix.MSG_TRUNC != 0:
		d.Dropped = "too long"
	case d.Pid < 0:
		d.Dropped = "no credentials"
	}
	return d, nil
}

// Close closes the socket; a Read under way returns an error.
func (s *Socket) Close() error { return s.conn.Close() }

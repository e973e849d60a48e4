package api

import (
	"errors"
	"fmt"
	"net"
	"os"

	"gaffer/sockfile"
)

// The socket file is made by package sockfile, which holds the rules against symlink swaps that
// the API socket and the sockets of socket activation share: trusted directories, a private
// directory for bind, chmod and chown, an atomic rename into place, and a stale socket replaced
// only if it is the one checked.

// maxSocketPath is the longest socket path (sun_path without its NUL).
const maxSocketPath = sockfile.MaxPath

// ErrInUse is what an error of Listen wraps when another gaffer answers on the socket's path:
// errors.Is(err, ErrInUse).
var ErrInUse = errors.New("another gaffer is listening")

// inUseError says which path another gaffer answers on.
type inUseError struct{ path string }

func (e inUseError) Error() string        { return "another gaffer is listening on " + e.path }
func (e inUseError) Is(target error) bool { return target == ErrInUse }

// listenHooks are seams for tests; nil members do nothing.
type listenHooks struct {
	afterBind func() // between bind and setting the mode and group
}

// listenSocket creates the listening socket file at path with mode and group (gid < 0 leaves it).
func listenSocket(path string, mode os.FileMode, gid int, hooks *listenHooks) (*net.UnixListener, *sockfile.File, error) {
	o := sockfile.Options{
		Mode: mode, UID: -1, GID: gid, NonBlock: true,
		InUse: func(p string) error { return inUseError{p} },
	}
	if hooks != nil {
		o.AfterBind = hooks.afterBind
	}
	f, sock, err := sockfile.Listen(path, o)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		sock.Remove()
		return nil, nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	ul, ok := ln.(*net.UnixListener)
	if !ok {
		ln.Close()
		sock.Remove()
		return nil, nil, errors.New("not a Unix socket")
	}
	ul.SetUnlinkOnClose(false) // Close removes the file itself, and only if it is still ours
	return ul, sock, nil
}

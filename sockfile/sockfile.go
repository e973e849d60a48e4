// Package sockfile creates the listening Unix socket files of gaffer (the API socket, and the
// sockets of socket activation) so that nobody else can redirect what gaffer creates, chmods,
// chowns or replaces: the rules against symlink swaps live here once.
//
// How Listen creates the socket file without a chmod, chown or mkdir that someone else could
// redirect to another file (os.Chmod on the path follows a symlink renamed over it after bind):
//
//  1. The socket's directory is opened by walking down from / one component at a time, each
//     opened relative to its parent with O_NOFOLLOW (missing ones made with mkdirat). Every
//     directory on the way must belong to root or to gaffer's uid and be writable by nobody else
//     unless it is sticky: whoever may rename entries of a directory could swap what gaffer then
//     opens, creates or replaces below it. A symlink on the way is followed only when nobody else
//     could have put it there (a sticky directory's entries may belong to others).
//  2. The socket is bound in a fresh private directory (mkdirat 0700) next to the final name, on
//     the same filesystem, and given its mode, owner and group there with fchmodat and fchownat:
//     no one else can enter that directory, so no one can swap the file.
//  3. It listens, and only then appears at its path by renameat2(RENAME_NOREPLACE), or replaces
//     a stale socket by RENAME_EXCHANGE: what comes back is checked to be the stale socket that
//     was checked (same device and inode) before it is removed, and put back otherwise. Nothing
//     but a socket nobody answers on is ever replaced, and a symlink at the path is never
//     followed.
//
// The socket's directory stays open, so that File.Remove removes the file Listen made (same
// inode) through it, wherever that directory has gone since, and File.SetAccess changes that
// file's mode and group later through a descriptor of it that is checked to be it (access.go).
package sockfile

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// MaxPath is the longest socket path: sun_path holds 108 bytes with the terminating NUL.
	MaxPath     = 107
	maxSymlinks = 40  // like the kernel's ELOOP limit
	boundName   = "s" // the socket's name in the private directory
	// DefaultBacklog is the listen backlog when Options leave it 0; the kernel caps it at
	// net.core.somaxconn.
	DefaultBacklog = 4096
)

// Options say how Listen makes the socket.
type Options struct {
	Mode os.FileMode // permission bits of the socket file
	UID  int         // its owner; -1 leaves gaffer's
	GID  int         // its group; -1 leaves gaffer's
	// Backlog is listen(2)'s backlog; 0 means DefaultBacklog.
	Backlog int
	// NonBlock makes the socket non-blocking (for Go's poller); else it is blocking, as a
	// process that inherits it expects.
	NonBlock bool
	// InUse is the error for a path where something answers; nil means "something is
	// listening on PATH".
	InUse func(path string) error
	// AfterBind is a seam for tests: it runs between bind and setting the mode and owner.
	AfterBind func()
}

// File is the socket file Listen made. Its methods may be called from several goroutines.
type File struct {
	path string // as Listen was given it, for messages
	name string // its name in dir
	dev  uint64 // the socket's device and inode: the file Listen made
	ino  uint64
	uid0 uint32 // its owner and group as bound, before Options' UID and GID applied
	gid0 uint32

	mu  sync.Mutex
	dir int // O_PATH descriptor of the directory that holds it, -1 once removed; guarded by mu
}

// Remove unlinks the socket file if it is still the one Listen made, and closes what File
// holds. It is safe to call more than once, and on nil.
func (f *File) Remove() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dir < 0 {
		return
	}
	var st unix.Stat_t
	if unix.Fstatat(f.dir, f.name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Dev == f.dev && st.Ino == f.ino {
		// Nobody else can swap the entry between the check and the unlink: its directory is
		// writable only by root and gaffer, or sticky (and the entry is gaffer's).
		_ = unix.Unlinkat(f.dir, f.name, 0)
	}
	unix.Close(f.dir)
	f.dir = -1
}

// Listen creates a listening stream socket file at path with o's mode, owner and group, and
// returns the socket (close-on-exec) and the file, which the caller removes when done. A stale
// socket file (nobody answers on it) is replaced; anything else at path is an error, as is a
// directory on the way that gaffer does not trust (see the package comment).
func Listen(path string, o Options) (*os.File, *File, error) {
	if len(path) > MaxPath {
		return nil, nil, fmt.Errorf("cannot listen on %s: path too long (%d bytes, at most %d)", path, len(path), MaxPath)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	dirPath, name := filepath.Split(abs)
	if name == "" || name == "." || name == ".." {
		return nil, nil, fmt.Errorf("cannot listen on %s: not a file name", path)
	}
	dir, err := openDir(filepath.Clean(dirPath), os.Geteuid(), true)
	if err != nil {
		return nil, nil, err
	}
	keep := false
	defer func() {
		if !keep {
			unix.Close(dir)
		}
	}()
	// Fail early, before making anything, on a live or a non-socket file.
	if _, err := checkExisting(dir, name, path, o.InUse); err != nil {
		return nil, nil, err
	}
	priv, privName, err := makePrivateDir(dir, name)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot listen on %s: cannot create a private directory beside it: %w", path, err)
	}
	defer func() {
		_ = unix.Unlinkat(priv, boundName, 0) // still there when something failed
		unix.Close(priv)
		_ = unix.Unlinkat(dir, privName, unix.AT_REMOVEDIR)
	}()
	backlog := o.Backlog
	if backlog <= 0 {
		backlog = DefaultBacklog
	}
	sock, err := bindPrivate(priv, filepath.Join(filepath.Dir(abs), privName, boundName), backlog, o.NonBlock)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot listen on %s: %w", path, unwrapSyscall(err))
	}
	ok := false
	defer func() {
		if !ok {
			sock.Close()
		}
	}()
	if o.AfterBind != nil {
		o.AfterBind()
	}
	// Owner and group as bound (gaffer's, or the directory's group when it is set-group-ID):
	// File.SetAccess goes back to them for a UID or GID of -1. Device and inode stay.
	var st unix.Stat_t
	if err := unix.Fstatat(priv, boundName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, nil, fmt.Errorf("cannot stat the new socket %s: %w", path, err)
	}
	if err := unix.Fchmodat(priv, boundName, uint32(o.Mode.Perm()), 0); err != nil {
		return nil, nil, fmt.Errorf("cannot set the mode of socket %s: %w", path, err)
	}
	if o.UID >= 0 || o.GID >= 0 {
		if err := unix.Fchownat(priv, boundName, o.UID, o.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, nil, fmt.Errorf("cannot set the owner of socket %s: %w", path, err)
		}
	}
	if err := place(priv, dir, name, path, o.InUse); err != nil {
		return nil, nil, err
	}
	ok, keep = true, true
	return sock, &File{path: path, dir: dir, name: name, dev: st.Dev, ino: st.Ino, uid0: st.Uid, gid0: st.Gid}, nil
}

// openDir opens the directory dir (absolute and clean) for the *at calls, creating what is missing
// (0755, less the umask) when create is set, as described at the top of this file.
func openDir(dir string, self int, create bool) (int, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cannot open /: %w", err)
	}
	cur := "/"
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("cannot stat /: %w", err)
	}
	if err := trusted(&st, cur, self); err != nil {
		unix.Close(fd)
		return -1, err
	}
	curShared := sharedDir(&st) // cur's entries may belong to others
	todo := splitPath(dir)
	links, created := 0, 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		next := filepath.Join(cur, c)
		nfd, err := unix.Openat(fd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create && created < 2*maxSymlinks {
			// Made under a trusted directory: nobody else can swap it before the openat.
			if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, fmt.Errorf("cannot create the socket's directory %s: %w", next, err)
			}
			created++
			todo = append([]string{c}, todo...)
			continue
		}
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			target, lerr := readTrustedLink(fd, c, next, curShared, self)
			if lerr != nil {
				unix.Close(fd)
				return -1, lerr
			}
			if target == "" {
				unix.Close(fd)
				return -1, fmt.Errorf("cannot use the socket's directory %s: not a directory", next)
			}
			if links++; links > maxSymlinks {
				unix.Close(fd)
				return -1, fmt.Errorf("cannot use the socket's directory %s: too many levels of symbolic links", next)
			}
			todo = append(splitPath(target), todo...)
			if filepath.IsAbs(target) {
				unix.Close(fd)
				if fd, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
					return -1, fmt.Errorf("cannot open /: %w", err)
				}
				cur = "/" // checked already
				if err := unix.Fstat(fd, &st); err != nil {
					unix.Close(fd)
					return -1, fmt.Errorf("cannot stat /: %w", err)
				}
				curShared = sharedDir(&st)
			}
			continue
		}
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("cannot open the socket's directory %s: %w", next, err)
		}
		unix.Close(fd)
		fd, cur = nfd, next
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("cannot stat %s: %w", cur, err)
		}
		if err := trusted(&st, cur, self); err != nil {
			unix.Close(fd)
			return -1, err
		}
		curShared = sharedDir(&st)
	}
	return fd, nil
}

// splitPath returns the components of p, without empty ones and ".".
func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// trusted checks a directory on the socket's path: owned by root or gaffer's uid, and writable by
// no one else unless sticky (whoever may rename its entries could swap what gaffer uses below it).
func trusted(st *unix.Stat_t, path string, self int) error {
	if st.Uid != 0 && int(st.Uid) != self {
		return fmt.Errorf("refusing the socket's directory %s: it belongs to uid %d, not to root or gaffer's uid", path, st.Uid)
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return fmt.Errorf("refusing the socket's directory %s: others may write it (mode %04o) and it is not sticky", path, st.Mode&0o7777)
	}
	return nil
}

// sharedDir reports whether others may create entries in a (trusted, hence sticky) directory.
func sharedDir(st *unix.Stat_t) bool { return st.Mode&0o022 != 0 }

// readTrustedLink returns the target of the symlink name in dir, or "" when name is not a symlink.
// In a directory where others may create entries, a symlink that is not root's or gaffer's is
// refused, as the kernel's protected_symlinks does.
func readTrustedLink(dir int, name, path string, shared bool, self int) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return "", fmt.Errorf("cannot stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", nil
	}
	if shared && st.Uid != 0 && int(st.Uid) != self {
		return "", fmt.Errorf("refusing the socket's directory %s: a symbolic link of uid %d in a directory others may write", path, st.Uid)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", fmt.Errorf("cannot read the symbolic link %s: %w", path, err)
	}
	if n == len(buf) || n == 0 {
		return "", fmt.Errorf("cannot read the symbolic link %s: %w", path, unix.ENAMETOOLONG)
	}
	return string(buf[:n]), nil
}

// checkExisting examines what is at name in dir: nothing (nil), a stale socket (its stat), or an
// error for anything else, a live socket included (inUse's error).
func checkExisting(dir int, name, path string, inUse func(string) error) (*unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
	case unix.S_IFLNK:
		return nil, fmt.Errorf("cannot listen on %s: it exists and is not a socket (a symbolic link, not followed)", path)
	default:
		return nil, fmt.Errorf("cannot listen on %s: it exists and is not a socket", path)
	}
	if inUse == nil {
		inUse = func(p string) error { return fmt.Errorf("cannot listen on %s: something is listening on it", p) }
	}
	// connect(2) would follow a symlink renamed over the socket since the fstatat: only a socket
	// found live is believed, and a stale one is replaced only if it is still the same inode.
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return nil, inUse(path)
	case errors.Is(err, syscall.EAGAIN):
		// A full backlog: something is listening, just busy.
		return nil, inUse(path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return &st, nil
	}
	return nil, fmt.Errorf("cannot check the existing socket %s: %w", path, unwrapSyscall(err))
}

// makePrivateDir makes a fresh directory, mode 0700, beside name in dir, and opens it.
func makePrivateDir(dir int, name string) (fd int, privName string, err error) {
	prefix := "." + name
	if len(prefix) > 200 {
		prefix = prefix[:200]
	}
	for range 16 {
		var b [6]byte
		// getrandom(2) rather than crypto/rand, which would link its DRBG into the -tags
		// gaffer_notls build for nothing else (160 kB). Up to 256 bytes it is never short.
		if _, err := unix.Getrandom(b[:], 0); err != nil {
			return -1, "", fmt.Errorf("getrandom: %w", err)
		}
		privName = prefix + ".gaffer-" + hex.EncodeToString(b[:])
		err = unix.Mkdirat(dir, privName, 0o700)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return -1, "", err
		}
		fd, err = unix.Openat(dir, privName, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			_ = unix.Unlinkat(dir, privName, unix.AT_REMOVEDIR)
			return -1, "", err
		}
		return fd, privName, nil
	}
	return -1, "", unix.EEXIST
}

// bindPrivate makes a listening socket bound at boundName in the private directory priv, through
// /proc/self/fd (short, and immune to renames above it) or else through its real path.
func bindPrivate(priv int, real string, backlog int, nonBlock bool) (*os.File, error) {
	flags := unix.SOCK_STREAM | unix.SOCK_CLOEXEC
	if nonBlock {
		flags |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(unix.AF_UNIX, flags, 0)
	if err != nil {
		return nil, err
	}
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: "/proc/self/fd/" + strconv.Itoa(priv) + "/" + boundName})
	if err != nil && !errors.Is(err, unix.EADDRINUSE) && len(real) <= MaxPath {
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: real}) // no /proc
	}
	if err == nil {
		err = unix.Listen(fd, backlog)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "unix socket"), nil
}

// place moves the bound socket from priv to name in dir: where nothing is, or over a stale
// socket, never over anything else.
func place(priv, dir int, name, path string, inUse func(string) error) error {
	for range 8 {
		err := unix.Renameat2(priv, boundName, dir, name, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// A filesystem without renameat2's flags: a hard link is just as exclusive.
			if err = unix.Linkat(priv, boundName, dir, name, 0); err == nil {
				_ = unix.Unlinkat(priv, boundName, 0)
			}
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("cannot listen on %s: %w", path, err)
		}
		stale, err := checkExisting(dir, name, path, inUse)
		if err != nil {
			return err
		}
		if stale == nil {
			continue // gone meanwhile
		}
		if err := replaceStale(priv, dir, name, path, stale); err == nil || !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return fmt.Errorf("cannot listen on %s: it keeps changing", path)
}

// replaceStale swaps the bound socket in priv with the stale socket at name in dir, and removes
// the stale one, which must be the inode that was checked; anything else is put back.
// ENOENT means the stale socket went away before the swap.
func replaceStale(priv, dir int, name, path string, stale *unix.Stat_t) error {
	err := unix.Renameat2(priv, boundName, dir, name, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// No RENAME_EXCHANGE here. Remaining race: in a sticky directory, the owner of the stale
		// socket may replace it with another file of their own between this check and the
		// unlink; that file is removed. No one else can change the entry.
		var st unix.Stat_t
		if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if st.Dev != stale.Dev || st.Ino != stale.Ino {
			return fmt.Errorf("cannot listen on %s: it changed while gaffer replaced it", path)
		}
		if err := unix.Unlinkat(dir, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("cannot remove stale socket %s: %w", path, err)
		}
		return unix.ENOENT // place again
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return err
		}
		return fmt.Errorf("cannot replace stale socket %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(priv, boundName, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil &&
		st.Mode&unix.S_IFMT == unix.S_IFSOCK && st.Dev == stale.Dev && st.Ino == stale.Ino {
		_ = unix.Unlinkat(priv, boundName, 0)
		return nil
	}
	// Not what was checked: put it back. Our socket at name is gaffer's, so no one but root can
	// have moved it meanwhile, even in a sticky directory.
	if err := unix.Renameat2(priv, boundName, dir, name, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("cannot listen on %s: it changed while gaffer replaced it, and putting it back failed: %w", path, err)
	}
	return fmt.Errorf("cannot listen on %s: it changed while gaffer replaced it", path)
}

// unwrapSyscall reduces net and os errors to their errno, whose message reads well after a
// subject ("cannot listen on /run/gaffer.sock: permission denied").
func unwrapSyscall(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

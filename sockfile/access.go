package sockfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// SetAccess changes the mode, owner and group of the socket file Listen made, while it serves
// (a reload of gaffer's socket settings). A uid or gid of -1 goes back to the owner or group
// the file had when it was bound, as Listen does with Options' -1: gaffer's effective uid and
// gid, or the directory's group when the directory is set-group-ID.
//
// Only the file Listen made is changed, never what someone put at its path since: the path's
// entry is opened with O_PATH|O_NOFOLLOW from the directory Listen kept open, checked to be a
// socket with the device and inode Listen made, and changed through that descriptor: chown by
// fchownat(fd, "", AT_EMPTY_PATH), chmod by fchmodat2(fd, "", AT_EMPTY_PATH) (Linux 6.6), or
// else by chmod of /proc/self/fd/N, which the kernel resolves to the descriptor's own file
// (Linux's fchmodat cannot refuse to follow a symlink). A symlink, another file or another socket
// at the path is refused and left as it is.
//
// When the group changes, the mode goes first to what both the old and the new mode allow, so
// that neither group can use the socket in between with the other's rights; a failure leaves the
// mode it had.
func (f *File) SetAccess(mode os.FileMode, uid, gid int) error {
	return f.setAccess(mode, uid, gid, false)
}

// setAccess is SetAccess; viaProc skips fchmodat2 (tests reach both ways with it).
func (f *File) setAccess(mode os.FileMode, uid, gid int, viaProc bool) error {
	if f == nil {
		return errors.New("no socket file to change")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dir < 0 {
		return fmt.Errorf("cannot change socket %s: gaffer removed it", f.path)
	}
	if uid < 0 {
		uid = int(f.uid0)
	}
	if gid < 0 {
		gid = int(f.gid0)
	}
	fd, err := unix.Openat(f.dir, f.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cannot change socket %s: it is no longer there", f.path)
	}
	if err != nil {
		return fmt.Errorf("cannot change socket %s: %w", f.path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("cannot change socket %s: %w", f.path, err)
	}
	if what := f.other(&st); what != "" {
		return fmt.Errorf("refusing to change socket %s: %s is at its path now, not the socket gaffer made", f.path, what)
	}
	cur := st.Mode & 0o7777
	want := uint32(mode.Perm())
	if uint32(uid) != st.Uid || uint32(gid) != st.Gid {
		if narrow := cur & want; narrow != cur {
			if err := chmodFd(fd, narrow, viaProc); err != nil {
				return fmt.Errorf("cannot set the mode of socket %s to %04o: %w", f.path, narrow, err)
			}
		}
		if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
			_ = chmodFd(fd, cur, viaProc) // as it was
			if uint32(uid) != st.Uid {
				return fmt.Errorf("cannot set the owner of socket %s to uid %d and gid %d: %w", f.path, uid, gid, err)
			}
			return fmt.Errorf("cannot set the group of socket %s to gid %d: %w", f.path, gid, err)
		}
		cur &= want
	}
	if cur != want {
		if err := chmodFd(fd, want, viaProc); err != nil {
			return fmt.Errorf("cannot set the mode of socket %s to %04o: %w", f.path, want, err)
		}
	}
	return nil
}

// other describes what st is when it is not the socket Listen made, or returns "".
func (f *File) other(st *unix.Stat_t) string {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		if st.Dev == f.dev && st.Ino == f.ino {
			return ""
		}
		return "another socket"
	case unix.S_IFLNK:
		return "a symbolic link (not followed)"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFREG:
		return "a regular file"
	}
	return "another file"
}

// chmodFd sets the mode of the file that fd, an O_PATH descriptor, refers to: by fchmodat2 with
// AT_EMPTY_PATH, or (before Linux 6.6, under a seccomp filter that refuses it, or viaProc) by
// chmod of /proc/self/fd/N. Neither looks at a path that someone could change.
func chmodFd(fd int, mode uint32, viaProc bool) error {
	if !viaProc {
		err := unix.Fchmodat(fd, "", mode, unix.AT_EMPTY_PATH)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EINVAL):
			return err
		}
	}
	err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("no fchmodat2 (Linux 6.6) and no /proc: %w", err)
	}
	return err
}

package sockfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// PrivateDirName is the name of the private directory of uid that holds gaffer's API socket when
// the default path cannot be used: gaffer-<uid>, under $TMPDIR or /tmp.
func PrivateDirName(uid int) string { return "gaffer-" + strconv.Itoa(uid) }

// MakePrivateDir makes the private directory dir (an absolute path; its last element is the
// caller's PrivateDirName) with mode 0700, owned by gaffer's uid, or accepts it when it exists
// already as such: a real directory (a symbolic link is never followed), owned by gaffer's uid,
// that no one else may write. Anything else is refused with a one-line reason. The directories
// above it must pass the rules of Listen (missing ones are created as Listen creates them): in
// a sticky directory like /tmp, others may create entries, but not rename or remove gaffer's.
func MakePrivateDir(dir string) error {
	return privateDir(dir, true)
}

// CheckPrivateDir checks, without creating anything, that the private directory dir is what
// MakePrivateDir makes or accepts, below directories that pass Listen's rules: a client checks
// it before it connects to a socket in it. A missing directory is an error that wraps
// os.ErrNotExist.
func CheckPrivateDir(dir string) error {
	return privateDir(dir, false)
}

func privateDir(dir string, create bool) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("refusing %s: not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	parent, name := filepath.Split(dir)
	if name == "" {
		return fmt.Errorf("refusing %s: not a directory name", dir)
	}
	self := os.Geteuid()
	fd, err := openDir(filepath.Clean(parent), self, create)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if create {
		// 0700 less the umask: never more open than that.
		if err := unix.Mkdirat(fd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("cannot create %s: %w", dir, err)
		}
	}
	// The entry cannot change after this check in a way that matters: in a directory that
	// passed trusted(), only root, gaffer's uid or (sticky) the entry's owner may rename or
	// remove it, and the entry is found to be gaffer's.
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("cannot use %s: %w", dir, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
	case unix.S_IFLNK:
		return fmt.Errorf("refusing %s: a symbolic link (not followed)", dir)
	default:
		return fmt.Errorf("refusing %s: not a directory", dir)
	}
	if int(st.Uid) != self {
		return fmt.Errorf("refusing %s: it belongs to uid %d, not to gaffer's uid %d", dir, st.Uid, self)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("refusing %s: others may write it (mode %04o)", dir, st.Mode&0o7777)
	}
	return nil
}

package sockfile

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestListenOwnerModeBlocking: the socket gets the mode, owner and group asked for before it
// appears, it is blocking unless asked otherwise (a process that inherits it expects that), and
// Remove takes away only the file Listen made.
func TestListenOwnerModeBlocking(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown to another uid)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	f, file, err := Listen(path, Options{Mode: 0o640, UID: 65534, GID: 65534})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != syscall.S_IFSOCK|0o640 || st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("mode %o uid %d gid %d", st.Mode, st.Uid, st.Gid)
	}
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK != 0 {
		t.Errorf("flags %#x %v: want a blocking socket", flags, err)
	}
	if fdf, _ := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); fdf&unix.FD_CLOEXEC == 0 {
		t.Error("not close-on-exec")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// A second Listen finds it live.
	if _, _, err := Listen(path, Options{Mode: 0o600, UID: -1, GID: -1}); err == nil || !strings.Contains(err.Error(), "something is listening on it") {
		t.Errorf("second Listen: %v", err)
	}
	// Replaced by another file: Remove leaves that alone.
	os.Remove(path)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	file.Remove()
	file.Remove()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Remove took a file it did not make: %v", err)
	}
}

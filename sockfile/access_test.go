package sockfile

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// otherGID is a group gaffer may give its socket: nogroup as root, else its own.
func otherGID() int {
	if os.Geteuid() == 0 {
		return 65534
	}
	return os.Getegid()
}

// listenAt makes a socket with mode 0600 and gaffer's owner and group at dir/s.sock.
func listenAt(t *testing.T, dir string) (string, *File) {
	t.Helper()
	path := filepath.Join(dir, "s.sock")
	f, file, err := Listen(path, Options{Mode: 0o600, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); file.Remove() })
	return path, file
}

// lstat returns the mode (type and permission bits), uid and gid of path, not following it.
func lstat(t *testing.T, path string) (uint32, uint32, uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode, st.Uid, st.Gid
}

// TestSetAccess: the mode and group change on the socket file, by fchmodat2 and by /proc, and a
// gid of -1 goes back to the group the socket had when made.
func TestSetAccess(t *testing.T) {
	gid := otherGID()
	for _, viaProc := range []bool{false, true} {
		path, file := listenAt(t, t.TempDir())
		_, _, gid0 := lstat(t, path)
		if err := file.setAccess(0o660, -1, gid, viaProc); err != nil {
			t.Fatalf("viaProc %v: %v", viaProc, err)
		}
		if mode, uid, g := lstat(t, path); mode != syscall.S_IFSOCK|0o660 || int(uid) != os.Geteuid() || int(g) != gid {
			t.Errorf("viaProc %v: mode %o uid %d gid %d; want 0660, gid %d", viaProc, mode, uid, g, gid)
		}
		if err := file.setAccess(0o606, -1, -1, viaProc); err != nil {
			t.Fatalf("viaProc %v: %v", viaProc, err)
		}
		if mode, _, g := lstat(t, path); mode != syscall.S_IFSOCK|0o606 || g != gid0 {
			t.Errorf("viaProc %v: mode %o gid %d; want 0606 and the first gid %d", viaProc, mode, g, gid0)
		}
		// Unchanged settings change nothing, and fail on nothing.
		if err := file.setAccess(0o606, -1, -1, viaProc); err != nil {
			t.Errorf("viaProc %v, again: %v", viaProc, err)
		}
		if c, err := net.Dial("unix", path); err != nil {
			t.Errorf("viaProc %v: the socket no longer answers: %v", viaProc, err)
		} else {
			c.Close()
		}
	}
}

// TestSetAccessSetgidDirectory: in a set-group-ID directory, the socket's own group is the
// directory's, and a gid of -1 goes back to it rather than to gaffer's.
func TestSetAccessSetgidDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a directory of another group)")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 0, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	path, file := listenAt(t, dir)
	if _, _, g := lstat(t, path); g != 65534 {
		t.Fatalf("gid %d: want the directory's 65534", g)
	}
	if err := file.SetAccess(0o660, -1, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, g := lstat(t, path); g != 0 {
		t.Errorf("gid %d, want 0", g)
	}
	if err := file.SetAccess(0o660, -1, -1); err != nil {
		t.Fatal(err)
	}
	if _, _, g := lstat(t, path); g != 65534 {
		t.Errorf("gid %d after -1: want the directory's 65534", g)
	}
}

// TestSetAccessRefusesAnotherFile: whatever was put at the socket's path since Listen (a symlink
// to a secret, a regular file, a directory, another socket) is refused with a one-line reason
// and left as it is; a missing file is an error, as is a File that was removed.
func TestSetAccessRefusesAnotherFile(t *testing.T) {
	gid := otherGID()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	smode, suid, sgid := lstat(t, secret)
	for _, tt := range []struct {
		name string
		put  func(t *testing.T, path string)
		want string
	}{
		{"symlink", func(t *testing.T, path string) {
			if err := os.Symlink(secret, path); err != nil {
				t.Fatal(err)
			}
		}, "a symbolic link (not followed) is at its path now, not the socket gaffer made"},
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "a regular file is at its path now"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "a directory is at its path now"},
		{"another socket", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			t.Cleanup(func() { l.Close() })
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "another socket is at its path now"},
		{"nothing", func(*testing.T, string) {}, "it is no longer there"},
	} {
		for _, viaProc := range []bool{false, true} {
			path, file := listenAt(t, t.TempDir())
			moved := path + ".old"
			if err := os.Rename(path, moved); err != nil {
				t.Fatal(err)
			}
			tt.put(t, path)
			var before syscall.Stat_t
			syscall.Lstat(path, &before)
			err := file.setAccess(0o666, -1, gid, viaProc)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %v; want one line with %q", tt.name, err, tt.want)
			}
			var after syscall.Stat_t
			syscall.Lstat(path, &after)
			if after.Mode != before.Mode || after.Gid != before.Gid || after.Ino != before.Ino {
				t.Errorf("%s: changed: mode %o gid %d, was %o gid %d", tt.name, after.Mode, after.Gid, before.Mode, before.Gid)
			}
			if mode, uid, g := lstat(t, secret); mode != smode || uid != suid || g != sgid {
				t.Errorf("%s: the symlink's target changed: mode %o gid %d", tt.name, mode, g)
			}
			if mode, _, _ := lstat(t, moved); mode != syscall.S_IFSOCK|0o600 {
				t.Errorf("%s: the socket, renamed away, changed: mode %o", tt.name, mode)
			}
		}
	}
	_, file := listenAt(t, t.TempDir())
	file.Remove()
	if err := file.SetAccess(0o660, -1, -1); err == nil || !strings.Contains(err.Error(), "gaffer removed it") {
		t.Errorf("after Remove: %v", err)
	}
	var none *File
	if err := none.SetAccess(0o660, -1, -1); err == nil {
		t.Error("nil File: no error")
	}
}

// TestSetAccessWhileRemoved: SetAccess and Remove from different goroutines (a reload while gaffer
// stops) are safe: each SetAccess either changes the socket or says it was removed.
func TestSetAccessWhileRemoved(t *testing.T) {
	_, file := listenAt(t, t.TempDir())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := file.SetAccess(0o600|os.FileMode(i%2)<<5, -1, -1); err != nil && !strings.Contains(err.Error(), "gaffer removed it") {
					t.Errorf("SetAccess: %v", err)
					return
				}
			}
		}()
	}
	file.Remove()
	wg.Wait()
}

package api

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// secretFile makes a 0600 file that a redirected chmod or chown would change, and returns a check
// that it still has its mode, group and content.
func secretFile(t *testing.T) (string, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	var before syscall.Stat_t
	if err := syscall.Stat(path, &before); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != before.Mode || st.Gid != before.Gid || st.Uid != before.Uid {
			t.Errorf("%s changed: mode %o gid %d, was %o gid %d", path, st.Mode, st.Gid, before.Mode, before.Gid)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "secret" {
			t.Errorf("%s: %q %v", path, b, err)
		}
	}
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestListenSwapAfterBind: whatever is renamed over the socket's path between bind and setting the
// socket's mode and group, the mode and group go to the socket only, a symlink is never followed,
// and nothing but a stale socket is replaced. (The old Listen chmodded and chowned the path, which
// followed a symlink renamed over it: a root-owned 0600 file became 0666.)
func TestListenSwapAfterBind(t *testing.T) {
	gid := 65534
	if os.Getuid() != 0 {
		gid = os.Getgid()
	}
	for _, tt := range []struct {
		name  string
		stale bool // a stale socket is at the path before Listen
		swap  func(t *testing.T, path, secret string)
		want  string // in the error; "" for success
	}{
		{"symlink", false, func(t *testing.T, path, secret string) {
			if err := os.Symlink(secret, path); err != nil {
				t.Fatal(err)
			}
		}, "not a socket"},
		{"symlink over a stale socket", true, func(t *testing.T, path, secret string) {
			if err := os.Symlink(secret, path+".tmp"); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Fatal(err)
			}
		}, "not a socket"},
		{"hard link over a stale socket", true, func(t *testing.T, path, secret string) {
			if err := os.Link(secret, path+".tmp"); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Fatal(err)
			}
		}, "not a socket"},
		{"another stale socket", true, func(t *testing.T, path, _ string) {
			os.Remove(path)
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false)
			ln.Close()
		}, ""},
		{"stale socket removed", true, func(t *testing.T, path, _ string) { os.Remove(path) }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			secret, intact := secretFile(t)
			path := socketPath(t)
			if tt.stale {
				staleSocketAt(t, path)
			}
			swapped := false
			opts := Options{Path: path, Mode: 0o666, Group: gid, Backend: newFakeBackend(2),
				hooks: &listenHooks{afterBind: func() { swapped = true; tt.swap(t, path, secret) }}}
			s, err := Listen(opts)
			if !swapped {
				t.Fatal("the hook did not run")
			}
			intact()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				var st syscall.Stat_t
				if err := syscall.Lstat(path, &st); err != nil || st.Mode != syscall.S_IFSOCK|0o666 || int(st.Gid) != gid {
					t.Errorf("socket: mode %o gid %d %v", st.Mode, st.Gid, err)
				}
				s.Close()
			} else if err == nil || !strings.Contains(err.Error(), tt.want) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Listen: %v, want an error with %q", err, tt.want)
			}
			// No private directory left behind.
			for _, n := range entries(t, filepath.Dir(path)) {
				if strings.Contains(n, ".gaffer-") {
					t.Errorf("left behind: %s", n)
				}
			}
		})
	}
}

// staleSocketAt leaves a socket file at path that nobody listens on.
func staleSocketAt(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

// TestListenPathNotFollowed: a symlink, a regular file, a directory or a FIFO at the path is left
// as it is, and what a symlink points to is not touched.
func TestListenPathNotFollowed(t *testing.T) {
	secret, intact := secretFile(t)
	path := socketPath(t)
	// A symlink to a stale socket, and to a file.
	other := filepath.Join(filepath.Dir(path), "other.sock")
	staleSocketAt(t, other)
	for _, target := range []string{other, secret} {
		os.Remove(path)
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		if s, err := Listen(Options{Path: path, Mode: 0o666, Group: -1}); err == nil || !strings.Contains(err.Error(), "not a socket") {
			if s != nil {
				s.Close()
			}
			t.Errorf("symlink to %s: %v", target, err)
		}
		if l, err := os.Readlink(path); err != nil || l != target {
			t.Errorf("the symlink changed: %q %v", l, err)
		}
	}
	intact()
	if fi, err := os.Lstat(other); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() == 0o666 {
		t.Errorf("the symlink's socket: %v %v", fi, err)
	}
	os.Remove(path)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Options{Path: path, Group: -1}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("directory: %v", err)
	}
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Options{Path: path, Group: -1}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("fifo: %v", err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeNamedPipe {
		t.Errorf("the fifo: %v %v", fi, err)
	}
}

// TestListenDirectories: the socket's directory and every directory above it must belong to root
// or gaffer's uid and be writable by no one else unless sticky; missing ones are created only
// below such directories; symlinks on the way are followed only where no one else could have put
// them.
func TestListenDirectories(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (directories of other uids)")
	}
	base, err := os.MkdirTemp("", "gdir")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	mkdir := func(rel string, mode os.FileMode, uid int) string {
		t.Helper()
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, -1); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mkdir("ok", 0o755, 0)
	mkdir("open", 0o777, 0)
	mkdir("group", 0o775, 0)
	mkdir("sticky", 0o777|os.ModeSticky, 0)
	mkdir("theirs", 0o755, 65534)
	mkdir("open2/inner", 0o755, 0)
	mkdir("open2", 0o777, 0)
	mkdir("sticky/theirs", 0o755, 65534)
	if err := os.Symlink(filepath.Join(base, "ok"), filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "ok"), filepath.Join(base, "sticky", "rootlink")); err != nil {
		t.Fatal(err)
	}
	theirLink := filepath.Join(base, "sticky", "theirlink")
	if err := os.Symlink(filepath.Join(base, "ok"), theirLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(theirLink, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		rel  string
		want string // in the error; "" for success
	}{
		{"ok/s.sock", ""},
		{"ok/new/deeper/s.sock", ""},
		{"sticky/s.sock", ""},
		{"sticky/new/s.sock", ""},
		{"link/s.sock", ""},
		{"link/../ok/new2/s.sock", ""},
		{"sticky/rootlink/s.sock", ""},
		{"open/s.sock", base + "/open: others may write it (mode 0777) and it is not sticky"},
		{"open/new/s.sock", base + "/open: others may write it"},
		{"group/s.sock", base + "/group: others may write it (mode 0775)"},
		{"theirs/s.sock", base + "/theirs: it belongs to uid 65534"},
		{"open2/inner/s.sock", base + "/open2: others may write it"},
		{"sticky/theirs/s.sock", base + "/sticky/theirs: it belongs to uid 65534"},
		{"sticky/theirlink/s.sock", base + "/sticky/theirlink: a symbolic link of uid 65534"},
		{"ok/s.sock/x.sock", ""}, // made below: a file where a directory should be
	} {
		path := filepath.Join(base, tt.rel)
		if tt.rel == "ok/s.sock/x.sock" {
			os.WriteFile(filepath.Join(base, "ok", "s.sock"), nil, 0o600)
			tt.want = base + "/ok/s.sock: not a directory"
		}
		s, err := Listen(Options{Path: path, Group: -1, Backend: newFakeBackend(2)})
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.rel, err)
				continue
			}
			if c, err := net.Dial("unix", path); err != nil {
				t.Errorf("%s: dial: %v", tt.rel, err)
			} else {
				c.Close()
			}
			if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
				t.Errorf("%s: %v %v", tt.rel, fi, err)
			}
			s.Close()
			if _, err := os.Lstat(path); !os.IsNotExist(err) {
				t.Errorf("%s: not removed on Close: %v", tt.rel, err)
			}
			continue
		}
		if err == nil {
			s.Close()
			t.Errorf("%s: listening, want %q", tt.rel, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want %q", tt.rel, err, tt.want)
		}
	}
	// Nothing was created under the refused directories.
	if n := entries(t, filepath.Join(base, "open")); len(n) != 0 {
		t.Errorf("created under open/: %v", n)
	}
	if _, err := os.Lstat(filepath.Join(base, "ok", "new", "deeper")); err != nil {
		t.Errorf("missing directories not created: %v", err)
	}
}

// TestListenLongPath: sun_path's limit applies to the path clients use, not to the private
// directory's longer one.
func TestListenLongPath(t *testing.T) {
	dir, err := os.MkdirTemp("", "glong")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	name := strings.Repeat("x", maxSocketPath-len(dir)-1)
	path := filepath.Join(dir, name)
	s, err := Listen(Options{Path: path, Group: -1, Backend: newFakeBackend(2)})
	if err != nil {
		t.Fatalf("a %d-byte path: %v", len(path), err)
	}
	defer s.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := Listen(Options{Path: path + "y", Group: -1}); err == nil || !strings.Contains(err.Error(), "path too long") {
		t.Errorf("a %d-byte path: %v", len(path)+1, err)
	}
}

package sockfile

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestPrivateDir: MakePrivateDir makes gaffer-<uid> 0700 and accepts it again; an existing one that
// is a symlink, a file, another uid's or writable by others is refused with a one-line reason by
// both MakePrivateDir and CheckPrivateDir, and left as it is; CheckPrivateDir creates nothing.
func TestPrivateDir(t *testing.T) {
	self := os.Geteuid()
	if got := PrivateDirName(65534); got != "gaffer-65534" {
		t.Errorf("PrivateDirName: %q", got)
	}
	base := t.TempDir()
	dir := filepath.Join(base, PrivateDirName(self))

	if err := CheckPrivateDir(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CheckPrivateDir of a missing directory: %v, want not exist", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("CheckPrivateDir created %s: %v", dir, err)
	}
	for range 2 {
		if err := MakePrivateDir(dir); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != syscall.S_IFDIR|0o700 || int(st.Uid) != self {
			t.Errorf("%s: mode %o uid %d; want a 0700 directory of uid %d", dir, st.Mode, st.Uid, self)
		}
		if err := CheckPrivateDir(dir); err != nil {
			t.Errorf("CheckPrivateDir: %v", err)
		}
	}
	// A 0755 directory of gaffer's is fine: only writing matters.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := MakePrivateDir(dir); err != nil {
		t.Errorf("0755: %v", err)
	}

	mk := func(name string, setup func(path string) error) string {
		t.Helper()
		path := filepath.Join(base, name)
		if err := setup(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		path, want string
	}{
		{mk("link", func(p string) error { return os.Symlink(dir, p) }), "a symbolic link (not followed)"},
		{mk("dangling", func(p string) error { return os.Symlink(filepath.Join(base, "nowhere"), p) }), "a symbolic link (not followed)"},
		{mk("file", func(p string) error { return os.WriteFile(p, nil, 0o600) }), "not a directory"},
		{mk("open", func(p string) error {
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			return os.Chmod(p, 0o777)
		}), "others may write it (mode 0777)"},
	}
	if self == 0 {
		cases = append(cases, struct{ path, want string }{mk("other", func(p string) error {
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			return os.Chown(p, 1000, 1000)
		}), "it belongs to uid 1000, not to gaffer's uid " + strconv.Itoa(self)})
	}
	for _, c := range cases {
		var before syscall.Stat_t
		if err := syscall.Lstat(c.path, &before); err != nil {
			t.Fatal(err)
		}
		for name, fn := range map[string]func(string) error{"MakePrivateDir": MakePrivateDir, "CheckPrivateDir": CheckPrivateDir} {
			err := fn(c.path)
			want := "refusing " + c.path + ": " + c.want
			if err == nil || err.Error() != want {
				t.Errorf("%s(%s): %v, want %q", name, filepath.Base(c.path), err, want)
			}
		}
		var after syscall.Stat_t
		if err := syscall.Lstat(c.path, &after); err != nil || after.Mode != before.Mode || after.Uid != before.Uid || after.Ino != before.Ino {
			t.Errorf("%s changed: %v", c.path, err)
		}
	}

	// Below a directory that others may write and that is not sticky: Listen's rule.
	shared := filepath.Join(base, "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	err := MakePrivateDir(filepath.Join(shared, PrivateDirName(self)))
	if err == nil || !strings.Contains(err.Error(), "refusing the socket's directory "+shared+": others may write it") {
		t.Errorf("below a world-writable directory: %v", err)
	}
	if ents, _ := os.ReadDir(shared); len(ents) != 0 {
		t.Errorf("created below a refused directory: %v", ents)
	}
	// Sticky like /tmp: fine, and a socket can then be made in it.
	sticky := filepath.Join(base, "sticky")
	if err := os.Mkdir(sticky, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(sticky, PrivateDirName(self))
	if err := MakePrivateDir(priv); err != nil {
		t.Fatal(err)
	}
	f, file, err := Listen(filepath.Join(priv, "gaffer.sock"), Options{Mode: 0o600, UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	file.Remove()
	if err := MakePrivateDir("relative/gaffer-0"); err == nil {
		t.Error("a relative path was accepted")
	}
}

package spawn

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gaffer/reaper"

	"golang.org/x/sys/unix"
)

// requireRoot skips a test that needs root, except in CI, where it must not be skipped silently.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root, and CI runs as root")
		}
		t.Skip("needs root")
	}
}

func writeFile(t *testing.T, path string, mode os.FileMode, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

const script = "#!/bin/sh\nexit 0\n"

func TestLookPath(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	bin2 := filepath.Join(root, "bin2")
	writeFile(t, filepath.Join(bin, "prog"), 0o755, script)
	writeFile(t, filepath.Join(bin, "noexec"), 0o644, script)
	writeFile(t, filepath.Join(bin, "onlyx"), 0o100, script) // root may exec with any x bit
	if err := os.Mkdir(filepath.Join(bin, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bin2, "prog2"), 0o755, script)
	writeFile(t, filepath.Join(bin2, "noexec"), 0o755, script)
	writeFile(t, filepath.Join(bin2, "subdir"), 0o755, script)
	missing := filepath.Join(root, "missing")

	pathEnv := func(dirs ...string) []string { return []string{"PATH=" + strings.Join(dirs, ":")} }

	tests := []struct {
		name     string
		prog     string
		dir      string
		env      []string
		want     string
		wantCode int // 0: found
	}{
		{name: "in PATH", prog: "prog", env: pathEnv(bin), want: filepath.Join(bin, "prog")},
		{name: "second PATH entry", prog: "prog2", env: pathEnv(bin, bin2), want: filepath.Join(bin2, "prog2")},
		{name: "first match wins", prog: "noexec", env: pathEnv(bin2, bin), want: filepath.Join(bin2, "noexec")},
		{name: "skips not executable", prog: "noexec", env: pathEnv(bin, bin2), want: filepath.Join(bin2, "noexec")},
		{name: "skips directory", prog: "subdir", env: pathEnv(bin, bin2), want: filepath.Join(bin2, "subdir")},
		{name: "one x bit", prog: "onlyx", env: pathEnv(bin), want: filepath.Join(bin, "onlyx")},
		{name: "missing PATH entry skipped", prog: "prog", env: pathEnv(missing, bin), want: filepath.Join(bin, "prog")},
		{name: "last PATH wins", prog: "prog", env: []string{"PATH=" + missing, "PATH=" + bin}, want: filepath.Join(bin, "prog")},
		{name: "empty PATH entry is dir", prog: "prog", dir: bin, env: pathEnv("", missing), want: filepath.Join(bin, "prog")},
		{name: "not found", prog: "nosuchprog", env: pathEnv(bin, bin2), wantCode: 127},
		{name: "only not executable", prog: "noexec", env: pathEnv(bin), wantCode: 126},
		{name: "only a directory", prog: "subdir", env: pathEnv(bin), wantCode: 126},
		{name: "PATH from env, not DefaultPath", prog: "sh", env: pathEnv(bin), wantCode: 127},
		{name: "empty name", prog: "", env: pathEnv(bin), wantCode: 127},
		{name: "empty PATH finds nothing", prog: "sh", env: []string{"PATH="}, wantCode: 127},
		// A shell says "not found" (127) when a PATH entry is a file, not a directory.
		{name: "PATH entry is a file", prog: "nosuchprog", env: pathEnv(filepath.Join(bin, "prog"), bin), wantCode: 127},

		{name: "absolute", prog: filepath.Join(bin, "prog"), env: pathEnv(missing), want: filepath.Join(bin, "prog")},
		{name: "absolute ignores dir", prog: filepath.Join(bin, "prog"), dir: bin2, want: filepath.Join(bin, "prog")},
		{name: "absolute not executable", prog: filepath.Join(bin, "noexec"), wantCode: 126},
		{name: "absolute directory", prog: bin, wantCode: 126},
		{name: "absolute missing", prog: filepath.Join(missing, "prog"), wantCode: 127},
		{name: "absolute below a file", prog: filepath.Join(bin, "prog", "x"), wantCode: 126},
		{name: "relative with dir", prog: "./prog", dir: bin, env: pathEnv(missing), want: filepath.Join(bin, "prog")},
		{name: "relative subpath with dir", prog: "bin2/prog2", dir: root, want: filepath.Join(bin2, "prog2")},
		{name: "relative not in dir", prog: "./prog2", dir: bin, env: pathEnv(bin2), wantCode: 127},
		{name: "relative not executable", prog: "./noexec", dir: bin, wantCode: 126},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LookPath(tt.prog, tt.dir, tt.env)
			if tt.wantCode != 0 {
				var se *StartError
				if !errors.As(err, &se) {
					t.Fatalf("LookPath(%q) = %q, %v; want a *StartError", tt.prog, got, err)
				}
				if se.Code != tt.wantCode {
					t.Errorf("LookPath(%q): code %d (%v), want %d", tt.prog, se.Code, err, tt.wantCode)
				}
				if se.Name != strconv.Quote(tt.prog) {
					t.Errorf("LookPath(%q): error names %s, want %q", tt.prog, se.Name, tt.prog)
				}
				if got != "" {
					t.Errorf("LookPath(%q) = %q with an error, want \"\"", tt.prog, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("LookPath(%q): %v", tt.prog, err)
			}
			if got != tt.want {
				t.Errorf("LookPath(%q) = %q, want %q", tt.prog, got, tt.want)
			}
		})
	}
}

// TestLookPathAs: a PATH entry counts only if the child's identity may search the directories and
// execute the file, by the kernel's rule: owner bits for the owner, else group bits for a member
// (primary or supplementary), else other bits; root needs one x bit.
func TestLookPathAs(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	type fixture struct {
		dirMode, mode os.FileMode
		uid, gid      int
	}
	files := map[string]fixture{
		"rootonly": {0o755, 0o700, 0, 0},
		"shared":   {0o755, 0o755, 0, 0},
		"grp":      {0o755, 0o710, 0, 2000},
		"owner":    {0o755, 0o070, 1000, 2000}, // the owner's bits deny the owner, whatever the group's say
		"locked":   {0o700, 0o755, 0, 0},       // a directory only root may search
		"other":    {0o755, 0o701, 0, 0},
		"grpdeny":  {0o755, 0o701, 0, 2000}, // others may, the group may not
		"noexec":   {0o755, 0o644, 0, 0},
	}
	for name, f := range files {
		dir := filepath.Join(root, name)
		writeFile(t, filepath.Join(dir, "prog"), f.mode, script)
		if err := os.Chown(filepath.Join(dir, "prog"), f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, "prog"), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, f.dirMode); err != nil {
			t.Fatal(err)
		}
	}
	// A symbolic link into the locked directory: the target's directories count.
	if err := os.Symlink(filepath.Join(root, "locked"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	app := &Identity{UID: 1000, GID: 1000, Groups: []uint32{1000, 2000}}
	appPrimary := &Identity{UID: 1000, GID: 2000, Groups: []uint32{}} // the group through the primary gid only
	appStaff := &Identity{UID: 1000, GID: 50, Groups: []uint32{50}}
	stranger := &Identity{UID: 4242, GID: 4242, Groups: []uint32{4242}}
	member := &Identity{UID: 4242, GID: 4242, Groups: []uint32{4242, 2000}}
	rootID := &Identity{UID: 0, GID: 0, Groups: []uint32{0}}
	in := func(dirs ...string) []string {
		for i, d := range dirs {
			dirs[i] = filepath.Join(root, d)
		}
		return []string{"PATH=" + strings.Join(dirs, ":")}
	}
	at := func(dir string) string { return filepath.Join(root, dir, "prog") }
	tests := []struct {
		name     string
		id       *Identity
		prog     string
		env      []string
		want     string
		wantCode int
	}{
		{"root-only file skipped", app, "prog", in("rootonly", "shared"), at("shared"), 0},
		{"unsearchable directory skipped", app, "prog", in("locked", "shared"), at("shared"), 0},
		{"through a symlink to an unsearchable directory", app, "prog", in("link", "shared"), at("shared"), 0},
		{"owner bits deny the owner", app, "prog", in("owner", "shared"), at("shared"), 0},
		{"supplementary group", app, "prog", in("grp", "shared"), at("grp"), 0},
		{"primary group", appPrimary, "prog", in("grp", "shared"), at("grp"), 0},
		{"not in the group", appStaff, "prog", in("grp", "shared"), at("shared"), 0},
		{"other bits", stranger, "prog", in("grp", "owner", "other"), at("other"), 0},
		{"group member, not owner", member, "prog", in("owner", "shared"), at("owner"), 0},
		{"group member: group bits, not other bits", member, "prog", in("grpdeny", "shared"), at("shared"), 0},
		{"not a member: other bits", stranger, "prog", in("grpdeny", "shared"), at("grpdeny"), 0},
		{"root: one x bit anywhere", rootID, "prog", in("noexec", "owner"), at("owner"), 0},
		{"root: any directory", rootID, "prog", in("locked"), at("locked"), 0},
		{"nil is gaffer's own", nil, "prog", in("rootonly"), at("rootonly"), 0},
		{"only a root-only file", app, "prog", in("rootonly"), "", 126},
		{"not executable, then missing", app, "prog", in("locked", "rootonly", "nosuch"), "", 126},
		{"root: no x bit", rootID, "prog", in("noexec"), "", 126},
		{"missing", app, "prog", in("nosuch"), "", 127},
		{"absolute, root only", app, at("rootonly"), in("shared"), "", 126},
		{"absolute below an unsearchable directory", app, at("locked"), in("shared"), "", 126},
		{"absolute, group", app, at("grp"), in("rootonly"), at("grp"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LookPathAs(tt.prog, "", tt.env, tt.id)
			if tt.wantCode != 0 {
				var se *StartError
				if !errors.As(err, &se) || se.Code != tt.wantCode {
					t.Fatalf("LookPathAs(%q) = %q, %v; want code %d", tt.prog, got, err, tt.wantCode)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("LookPathAs(%q) = %q, %v; want %q", tt.prog, got, err, tt.want)
			}
		})
	}
}

// TestStartLooksUpAsIdentity: Start runs the file the child's identity may execute.
func TestStartLooksUpAsIdentity(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "a", "hello"), 0o700, "#!/bin/sh\necho a\n")
	writeFile(t, filepath.Join(root, "b", "hello"), 0o755, "#!/bin/sh\necho b\n")
	env := []string{"PATH=" + filepath.Join(root, "a") + ":" + filepath.Join(root, "b")}
	for _, c := range []struct {
		id   *Identity
		want string
	}{
		{&Identity{UID: 65534, GID: 65534, Groups: []uint32{65534}, Home: "/"}, "b\n"},
		{&Identity{UID: 0, GID: 0, Groups: []uint32{0}, Home: "/"}, "a\n"},
	} {
		r := reaper.New()
		out, e := run(t, r, Spec{Name: "hello", Argv: []string{"hello"}, Env: env, Dir: "/", Identity: c.id})
		if e.Code() != 0 || out != c.want {
			t.Errorf("as uid %d: exit %d, output %q; want 0 and %q", c.id.UID, e.Code(), out, c.want)
		}
	}
}

func TestLookPathDefaultPath(t *testing.T) {
	for _, env := range [][]string{nil, {"HOME=/"}, {"PATHX=/nonexistent"}} {
		got, err := LookPath("sh", "", env)
		if err != nil {
			t.Fatalf("LookPath(sh) with env %q: %v", env, err)
		}
		dirs := filepath.SplitList(DefaultPath)
		if filepath.Base(got) != "sh" || !slices.Contains(dirs, filepath.Dir(got)) {
			t.Errorf("LookPath(sh) with env %q = %q, want sh in one of %q", env, got, DefaultPath)
		}
		// The first directory of DefaultPath that has an sh.
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "sh")); err == nil {
				if want := filepath.Join(d, "sh"); got != want {
					t.Errorf("LookPath(sh) = %q, want the first in DefaultPath, %q", got, want)
				}
				break
			}
		}
	}
}

func TestGetenv(t *testing.T) {
	env := []string{"A=1", "B=2", "A=3", "C", "D=", "E=x=y", "AB=5"}
	tests := []struct {
		key    string
		want   string
		wantOK bool
	}{
		{"A", "3", true},
		{"B", "2", true},
		{"C", "", false},
		{"D", "", true},
		{"E", "x=y", true},
		{"AB", "5", true},
		{"F", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := Getenv(env, tt.key)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Getenv(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
		}
	}
	if v, ok := Getenv(nil, "A"); ok || v != "" {
		t.Errorf("Getenv(nil, A) = %q, %v", v, ok)
	}
}

func TestSetenv(t *testing.T) {
	tests := []struct {
		name       string
		env        []string
		key, value string
		want       []string
	}{
		{name: "nil", env: nil, key: "K", value: "V", want: []string{"K=V"}},
		{name: "new key", env: []string{"A=1"}, key: "B", value: "2", want: []string{"A=1", "B=2"}},
		{name: "replaces every assignment", env: []string{"A=1", "B=2", "A=3"}, key: "A", value: "9", want: []string{"B=2", "A=9"}},
		{name: "empty value", env: []string{"A=1"}, key: "A", value: "", want: []string{"A="}},
		{name: "prefix is another key", env: []string{"AB=1", "A=2"}, key: "A", value: "3", want: []string{"AB=1", "A=3"}},
		{name: "bare key replaced", env: []string{"A", "B=1"}, key: "A", value: "2", want: []string{"B=1", "A=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.env)
			got := Setenv(tt.env, tt.key, tt.value)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Setenv(%q, %q, %q) = %q, want %q", tt.env, tt.key, tt.value, got, tt.want)
			}
			if !slices.Equal(tt.env, in) {
				t.Errorf("Setenv changed its input: %q, was %q", tt.env, in)
			}
			if v, ok := Getenv(got, tt.key); !ok || v != tt.value {
				t.Errorf("Getenv after Setenv = %q, %v; want %q", v, ok, tt.value)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	base := []string{"PATH=/bin", "HOME=/old", "X=1", "HOME=/older"}
	app := &Identity{UID: 1000, GID: 1000, Home: "/home/app"}
	tests := []struct {
		name string
		base []string
		id   *Identity
		set  []string
		want []string
	}{
		{name: "empty", want: []string{}},
		{name: "base only", base: base, want: base},
		{name: "HOME from identity", base: base, id: app, want: []string{"PATH=/bin", "X=1", "HOME=/home/app"}},
		{name: "identity without base", id: app, want: []string{"HOME=/home/app"}},
		{name: "explicit wins over identity", base: base, id: app, set: []string{"HOME=/explicit"}, want: []string{"PATH=/bin", "X=1", "HOME=/explicit"}},
		{name: "explicit wins over base", base: base, set: []string{"X=2", "Y=3"}, want: []string{"PATH=/bin", "HOME=/old", "HOME=/older", "X=2", "Y=3"}},
		{name: "later explicit wins", set: []string{"X=1", "X=2"}, want: []string{"X=2"}},
		{name: "value with =", set: []string{"X=a=b"}, want: []string{"X=a=b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.base)
			got := Environ(tt.base, tt.id, tt.set)
			if got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("Environ = %q, want %q", got, tt.want)
			}
			if !slices.Equal(tt.base, in) {
				t.Errorf("Environ changed base: %q, was %q", tt.base, in)
			}
			if len(got) > 0 && len(tt.base) > 0 && &got[0] == &tt.base[0] {
				t.Errorf("Environ returned base's backing array")
			}
		})
	}
}

func TestStartErrorMessage(t *testing.T) {
	err := &StartError{Name: `"x"`, Code: 127, Err: unix.ENOENT}
	if got, want := err.Error(), `cannot run "x": no such file or directory`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("StartError does not unwrap to its Err")
	}
}

// waitExit drives r.Reap until p's exit arrives, or fails the test after a deadline.
func waitExit(t *testing.T, r *reaper.Reaper, p *Process) reaper.Exit {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err := r.Reap(); err != nil {
			t.Fatalf("Reap: %v", err)
		}
		select {
		case e := <-p.Exit:
			p.Release()
			if e.Pid != p.Pid {
				t.Errorf("exit of pid %d delivered for pid %d", e.Pid, p.Pid)
			}
			return e
		default:
		}
		if time.Now().After(deadline) {
			_ = unix.Kill(p.Pid, unix.SIGKILL)
			t.Fatalf("pid %d did not exit in time", p.Pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// drainChildren reaps until this process has no children left.
func drainChildren(t *testing.T, r *reaper.Reaper) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, none, err := r.Reap()
		if err != nil {
			t.Fatalf("Reap: %v", err)
		}
		if none {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("children left after the deadline")
		}
		time.Sleep(time.Millisecond)
	}
}

// run starts s with its stdout on a pipe and returns what it printed and its exit.
func run(t *testing.T, r *reaper.Reaper, s Spec) (string, reaper.Exit) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	s.Stdout = pw
	p, err := Start(r, s)
	pw.Close()
	if err != nil {
		t.Fatalf("Start(%q): %v", s.Argv, err)
	}
	_ = pr.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, rerr := io.ReadAll(pr)
	e := waitExit(t, r, p)
	if rerr != nil {
		t.Fatalf("read output of %q: %v", s.Argv, rerr)
	}
	return string(out), e
}

var testEnv = []string{"PATH=/usr/bin:/bin"}

func TestStartExitCode(t *testing.T) {
	r := reaper.New()
	tests := []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 5", 5},
		{"exit 255", 255},
		{"kill -9 $$", 128 + 9},
		{"kill -TERM $$", 128 + 15},
	}
	for _, tt := range tests {
		p, err := Start(r, Spec{Name: "sh", Argv: []string{"sh", "-c", tt.script}, Env: testEnv})
		if err != nil {
			t.Fatalf("Start(%q): %v", tt.script, err)
		}
		if p.Pid <= 0 {
			t.Fatalf("Start(%q): pid %d", tt.script, p.Pid)
		}
		e := waitExit(t, r, p)
		if e.Code() != tt.want {
			t.Errorf("sh -c %q: code %d, want %d", tt.script, e.Code(), tt.want)
		}
	}
	drainChildren(t, r)
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "noexec"), 0o644, script)
	writeFile(t, filepath.Join(dir, "garbage"), 0o755, "\x00\x01\x02 not a program\n")
	tests := []struct {
		name string
		argv []string
		dir  string
		code int
	}{
		{name: "empty argv", argv: nil, code: 127},
		{name: "empty command", argv: []string{""}, code: 127},
		{name: "not in PATH", argv: []string{"gaffer-no-such-command"}, code: 127},
		{name: "missing path", argv: []string{filepath.Join(dir, "missing")}, code: 127},
		{name: "not executable", argv: []string{filepath.Join(dir, "noexec")}, code: 126},
		{name: "directory", argv: []string{dir}, code: 126},
		// LookPath accepts it; execve fails with ENOEXEC in the child.
		{name: "exec format error", argv: []string{filepath.Join(dir, "garbage")}, code: 126},
		{name: "missing working directory", argv: []string{"/bin/true"}, dir: filepath.Join(dir, "missing"), code: 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reaper.New()
			p, err := Start(r, Spec{Name: "child", Argv: tt.argv, Env: testEnv, Dir: tt.dir})
			if err == nil {
				e := waitExit(t, r, p)
				t.Fatalf("Start(%q) started pid %d (code %d), want an error", tt.argv, p.Pid, e.Code())
			}
			var se *StartError
			if !errors.As(err, &se) {
				t.Fatalf("Start(%q) error %T %v, want a *StartError", tt.argv, err, err)
			}
			if se.Code != tt.code {
				t.Errorf("Start(%q): code %d (%v), want %d", tt.argv, se.Code, err, tt.code)
			}
			if p != nil {
				t.Errorf("Start(%q) returned a process with its error", tt.argv)
			}
			// Nothing is left for the reaper: a child whose exec failed was collected by Go itself.
			orphans, none, rerr := r.Reap()
			if rerr != nil || !none || len(orphans) != 0 {
				t.Errorf("after a failed start: Reap = %v, none %v, %v; want no children", orphans, none, rerr)
			}
			if reaped, _ := r.Counts(); reaped != 0 {
				t.Errorf("after a failed start: %d reaped", reaped)
			}
		})
	}
}

func TestStartRelativeDir(t *testing.T) {
	// gaffer --cwd sub -- ./prog: the program is relative to the child's working directory,
	// which is itself relative to gaffer's.
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "sub", "prog"), 0o755, "#!/bin/sh\necho ran\n")
	t.Chdir(root)
	r := reaper.New()
	out, e := run(t, r, Spec{Name: "prog", Argv: []string{"./prog"}, Dir: "sub", Env: testEnv})
	if e.Code() != 0 || out != "ran\n" {
		t.Errorf("./prog in sub: output %q, code %d; want \"ran\\n\", 0", out, e.Code())
	}
}

func TestStartOwnProcessGroup(t *testing.T) {
	r := reaper.New()
	// read is a builtin: /proc/self is the shell. Field 5 of stat is the process group.
	out, e := run(t, r, Spec{Name: "sh", Argv: []string{"sh", "-c", `read -r line < /proc/self/stat; set -- $line; echo $$ $5`}, Env: testEnv})
	if e.Code() != 0 {
		t.Fatalf("sh exited %d", e.Code())
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		t.Fatalf("output %q, want pid and pgid", out)
	}
	if f[0] != strconv.Itoa(e.Pid) {
		t.Errorf("child says it is pid %s, Start said %d", f[0], e.Pid)
	}
	if f[1] != f[0] {
		t.Errorf("child pid %s is in process group %s, want its own", f[0], f[1])
	}
	if f[1] == strconv.Itoa(unix.Getpgrp()) {
		t.Errorf("child shares the test's process group %s", f[1])
	}
}

func TestStartEmptySignalMask(t *testing.T) {
	// Block signals on this thread: the child would inherit them if Start did not clear the mask.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var block, old unix.Sigset_t
	for _, sig := range []unix.Signal{unix.SIGUSR1, unix.SIGUSR2, unix.SIGTERM, unix.SIGHUP} {
		block.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &block, &old); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) }()

	r := reaper.New()
	out, e := run(t, r, Spec{Name: "grep", Argv: []string{"grep", "^Sig", "/proc/self/status"}, Env: testEnv})
	if e.Code() != 0 {
		t.Fatalf("grep exited %d", e.Code())
	}
	var blk string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "SigBlk:"); ok {
			blk = strings.TrimSpace(v)
		}
	}
	if blk == "" {
		t.Fatalf("no SigBlk in %q", out)
	}
	if strings.Trim(blk, "0") != "" {
		t.Errorf("child's SigBlk = %s, want all zeros", blk)
	}
}

func TestStartStreamsEnvDir(t *testing.T) {
	r := reaper.New()
	dir := t.TempDir()
	extraR, extraW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer extraR.Close()
	script := `readlink /proc/$$/fd/0; readlink /proc/$$/fd/2; echo "$FOO"; pwd; echo extra >&3`
	out, e := run(t, r, Spec{
		Name:       "sh",
		Argv:       []string{"sh", "-c", script},
		Env:        []string{"PATH=/usr/bin:/bin", "FOO=bar baz"},
		Dir:        dir,
		ExtraFiles: []*os.File{extraW},
	})
	extraW.Close()
	if e.Code() != 0 {
		t.Fatalf("sh exited %d", e.Code())
	}
	want := strings.Join([]string{os.DevNull, os.DevNull, "bar baz", dir, ""}, "\n")
	if out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	_ = extraR.SetReadDeadline(time.Now().Add(5 * time.Second))
	extra, err := io.ReadAll(extraR)
	if err != nil || string(extra) != "extra\n" {
		t.Errorf("fd 3: %q, %v; want \"extra\\n\"", extra, err)
	}
}

func TestStartNilEnv(t *testing.T) {
	r := reaper.New()
	out, e := run(t, r, Spec{Name: "env", Argv: []string{"env"}})
	if e.Code() != 0 {
		t.Fatalf("env exited %d", e.Code())
	}
	if out != "" {
		t.Errorf("child of a nil Env has environment %q, want none", out)
	}
}

func TestStartIdentity(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name string
		id   Identity
		want string
	}{
		{name: "with groups", id: Identity{UID: 65534, GID: 65534, Groups: []uint32{65534, 100}, Home: "/"}, want: "65534\n65534\n65534 100\n"},
		{name: "nil groups means none", id: Identity{UID: 65534, GID: 65534, Home: "/"}, want: "65534\n65534\n65534\n"},
		{name: "other primary", id: Identity{UID: 1, GID: 2, Groups: []uint32{3}, Home: "/"}, want: "1\n2\n2 3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := reaper.New()
			id := tt.id
			out, e := run(t, r, Spec{Name: "id", Argv: []string{"sh", "-c", "id -u; id -g; id -G"}, Env: testEnv, Dir: "/", Identity: &id})
			if e.Code() != 0 {
				t.Fatalf("id exited %d", e.Code())
			}
			if out != tt.want {
				t.Errorf("as %+v: id says %q, want %q", tt.id, out, tt.want)
			}
		})
	}
}

func TestStartKeepsCredentialsWithoutIdentity(t *testing.T) {
	r := reaper.New()
	out, e := run(t, r, Spec{Name: "id", Argv: []string{"sh", "-c", "id -u; id -g"}, Env: testEnv})
	if e.Code() != 0 {
		t.Fatalf("id exited %d", e.Code())
	}
	if want := strconv.Itoa(os.Geteuid()) + "\n" + strconv.Itoa(os.Getegid()) + "\n"; out != want {
		t.Errorf("id says %q, want %q", out, want)
	}
}

func TestSysProcAttr(t *testing.T) {
	sys := sysProcAttr(Spec{})
	if !sys.Setpgid || sys.Pgid != 0 || sys.Foreground || sys.Credential != nil || sys.Pdeathsig != 0 {
		t.Errorf("sysProcAttr(Spec{}) = %+v, want Setpgid only", sys)
	}
	sys = sysProcAttr(Spec{Foreground: true, Identity: &Identity{UID: 1, GID: 2}})
	if !sys.Foreground || !sys.Setpgid {
		t.Errorf("Foreground spec: %+v", sys)
	}
	c := sys.Credential
	if c == nil || c.Uid != 1 || c.Gid != 2 || c.Groups == nil || len(c.Groups) != 0 || c.NoSetGroups {
		t.Errorf("credential %+v, want uid 1 gid 2 and an empty (not nil) group list", c)
	}
}

func TestForegroundTTY(t *testing.T) {
	if ForegroundTTY(nil) {
		t.Error("ForegroundTTY(nil) = true")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if ForegroundTTY(pr) {
		t.Error("ForegroundTTY(pipe) = true")
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ForegroundTTY(f) {
		t.Error("ForegroundTTY(/dev/null) = true")
	}
}

func TestSignalThroughPidfd(t *testing.T) {
	r := reaper.New()
	p, err := Start(r, Spec{Name: "sleep", Argv: []string{"sleep", "60"}, Env: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	if p.pidfd == nil {
		t.Log("no pidfd from clone: signals go by pid")
	}
	if err := p.Signal(0); err != nil {
		t.Fatalf("Signal(0) to a running child: %v", err)
	}
	if err := p.Signal(unix.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	if e := waitExit(t, r, p); e.Code() != 128+int(unix.SIGKILL) {
		t.Errorf("exit code %d, want %d", e.Code(), 128+int(unix.SIGKILL))
	}
	// waitExit released it: the pid is no longer ours.
	if err := p.Signal(unix.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after the exit and Release = %v, want os.ErrProcessDone", err)
	}
}

func TestSignalAfterReapBeforeRelease(t *testing.T) {
	r := reaper.New()
	p, err := Start(r, Spec{Name: "true", Argv: []string{"true"}, Env: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err := r.Reap(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Exit:
		case <-time.After(10 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("no exit")
			}
			continue
		}
		break
	}
	defer p.Release()
	if p.pidfd == nil {
		t.Skip("no pidfd from clone")
	}
	if err := p.Signal(unix.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal to a reaped child = %v, want os.ErrProcessDone", err)
	}
}

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const fixturePasswd = `root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
0day:x:1234:1234::/home/0day:/bin/sh
nohome:x:1500:1500:::/bin/sh
`

const fixtureGroup = `root:x:0:
staff:x:50:
app:x:1000:
0day:x:1234:
extra:x:2000:app,0day
more:x:2001:app
nogroup:x:65534:
`

// execAs runs `gaffer exec` with the fixture passwd and group bind-mounted over /etc in a private
// mount namespace, so the host's accounts are untouched.
func execAs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return gafferWithUsers(t, nil, append([]string{"exec"}, args...)...)
}

// gafferWithUsers runs gaffer with args and the extra environment env (K=V), with the fixture
// passwd and group as execAs has them.
func gafferWithUsers(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	pw, gr := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	if err := os.WriteFile(pw, []byte(fixturePasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gr, []byte(fixtureGroup), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"`
	argv := append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", pw, gr, "env"}, env...)
	argv = append(append(argv, gafferBin), args...)
	return runCmd(t, argv...)
}

func TestExecIdentityTable(t *testing.T) {
	needRoot(t)
	report := []string{"--", "sh", "-c", `echo "$(id -u) $(id -g) [$(id -G)] $HOME"`}
	cases := []struct {
		spec string
		want string
	}{
		{"app", "1000 1000 [1000 2000 2001] /home/app"},
		{"1000", "1000 1000 [1000 2000 2001] /home/app"},
		{"app:staff", "1000 50 [50] /home/app"},
		{"1000:50", "1000 50 [50] /home/app"},
		{"app:extra", "1000 2000 [2000] /home/app"},
		{":staff", "0 50 [50] /root"},
		{"4242", "4242 0 [0] /"},
		{"4242:4343", "4242 4343 [4343] /"},
		{"0day", "1234 1234 [1234 2000] /home/0day"},
		{"nohome", "1500 1500 [1500] /"},
		{"root", "0 0 [0] /root"},
		{"nobody", "65534 65534 [65534] /nonexistent"},
	}
	for _, c := range cases {
		code, out, stderr := execAs(t, append([]string{"--user", c.spec}, report...)...)
		if code != 0 || out != c.want {
			t.Errorf("--user %s: exit %d, got %q, want %q; stderr %q", c.spec, code, out, c.want, stderr)
		}
	}
	for _, bad := range []struct{ spec, names string }{
		{"nosuch", `"nosuch"`}, {"app:nosuchgroup", `"nosuchgroup"`}, {"0dayz", `"0dayz"`}, {"app:", "empty group"},
	} {
		code, out, stderr := execAs(t, append([]string{"--user", bad.spec}, report...)...)
		if code != 2 || out != "" || !strings.Contains(stderr, bad.names) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("--user %s: exit %d out %q stderr %q; want exit 2 and one line naming %s", bad.spec, code, out, stderr, bad.names)
		}
	}
}

func TestExecEnvironmentAndCwd(t *testing.T) {
	needRoot(t)
	code, out, stderr := execAs(t, "--user", "app", "--cwd", "/tmp", "--env", "HOME=/override", "--env", "X=1", "--",
		"sh", "-c", `echo "$(pwd) $HOME $X"`)
	if code != 0 || out != "/tmp /override 1" {
		t.Fatalf("exit %d out %q stderr %q", code, out, stderr)
	}
	code, out, _ = execAs(t, "--clear-env", "--env", "A=b", "--", "/usr/bin/env")
	if code != 0 || out != "A=b" {
		t.Fatalf("--clear-env: exit %d env %q", code, out)
	}
	code, out, _ = execAs(t, "--clear-env", "--user", "app", "--", "/usr/bin/env")
	if code != 0 || out != "HOME=/home/app" {
		t.Fatalf("--clear-env --user app: exit %d env %q, want only HOME", code, out)
	}
}

func TestExecReplacesGaffer(t *testing.T) {
	// The command runs in gaffer's own process: same pid, and gaffer's exit is the command's.
	g := startGaffer(t, startOpts{}, "exec", "--", "sh", "-c", `echo $$; cat /proc/$$/comm; exit 9`)
	pid := g.nextLine(10 * time.Second)
	comm := g.nextLine(10 * time.Second)
	if pid != strconv.Itoa(g.cmd.Process.Pid) || comm != "sh" {
		t.Fatalf("exec: command reports pid %s comm %s; gaffer was pid %d", pid, comm, g.cmd.Process.Pid)
	}
	if code := g.wait(10 * time.Second); code != 9 {
		t.Fatalf("exit %d, want 9", code)
	}
	for _, c := range []struct {
		argv []string
		code int
	}{{[]string{"no-such-command-xyz"}, 127}, {[]string{"/etc/passwd"}, 126}} {
		code, _, stderr := runGaffer(t, startOpts{}, append([]string{"exec", "--"}, c.argv...)...)
		if code != c.code || strings.Count(stderr, "\n") != 1 {
			t.Errorf("exec %q: exit %d stderr %q, want %d and one line", c.argv, code, stderr, c.code)
		}
	}
}

// TestEmptyUserIsAnError: an empty --user, -u or GAFFER_USER ran the command as root. It is a
// usage error in every command that takes a user; leaving the flag out keeps gaffer's identity.
func TestEmptyUserIsAnError(t *testing.T) {
	needRoot(t)
	for _, c := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"exec", "--user", "", "--", "id"}},
		{nil, []string{"exec", "--user=", "--", "id"}},
		{nil, []string{"exec", "-u", "", "--", "id"}},
		{[]string{"GAFFER_USER="}, []string{"exec", "--", "id"}},
		{nil, []string{"--user", "", "--", "id"}},
		{nil, []string{"run", "--user", "", "--", "id"}},
		{[]string{"GAFFER_USER="}, []string{"--", "id"}},
		{[]string{"GAFFER_USER="}, []string{"run", "--", "id"}},
	} {
		code, out, stderr := runGaffer(t, startOpts{env: c.env}, c.args...)
		if code != 2 || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "empty") {
			t.Errorf("%q %q: exit %d, stdout %q, stderr %q; want exit 2 and one line about the empty user", c.env, c.args, code, out, stderr)
		}
	}
	// An unset GAFFER_USER is no user: the command runs as gaffer.
	code, out, stderr := runGaffer(t, startOpts{}, "exec", "--", "id", "-u")
	if code != 0 || out != "0" {
		t.Errorf("no --user: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestIDsOutOfRangeAreUsageErrors: ids above 2147483646 are refused before anything starts.
func TestIDsOutOfRangeAreUsageErrors(t *testing.T) {
	needRoot(t)
	for _, spec := range []string{"4294967295", "0:4294967295", "2147483647", ":2147483647", "99999999999"} {
		for _, cmd := range [][]string{{"exec"}, {"run"}} {
			args := append(cmd, "--user", spec, "--", "id")
			code, out, stderr := runGaffer(t, startOpts{}, args...)
			if code != 2 || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "out of range 0-2147483646") {
				t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and one line: out of range", args, code, out, stderr)
			}
		}
	}
}

// pathFixture makes PATH directories in a world-searchable temporary directory, each with a
// script hello that prints the directory's name. The fixture users: app is uid 1000, gid 1000,
// also in extra (2000) and more (2001).
func pathFixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	// t.TempDir makes its directory and the parent 0700: the users must be able to search them.
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct {
		dir      string
		dirMode  os.FileMode
		mode     os.FileMode
		uid, gid int
	}{
		// Scripts: sh must read them too, so every x bit comes with r.
		{"rootonly", 0o755, 0o700, 0, 0}, // only root may run it
		{"shared", 0o755, 0o755, 0, 0},
		{"grp", 0o755, 0o750, 0, 2000},      // app through a supplementary group
		{"owner", 0o755, 0o070, 1000, 2000}, // app owns it: the owner bits deny, whatever the group's say
		{"locked", 0o700, 0o755, 0, 0},      // app cannot search the directory
		{"other", 0o755, 0o705, 0, 0},       // anyone but root and group root
	} {
		dir := filepath.Join(root, f.dir)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "hello")
		if err := os.WriteFile(file, []byte("#!/bin/sh\necho "+f.dir+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(file, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
		// Modes last: chown clears set-id bits, and Mkdir and WriteFile go through the umask.
		if err := os.Chmod(file, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, f.dirMode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestLookupAsTargetUser: the command is looked up as the user it runs as. gaffer looked it up as
// root, before the switch: with PATH=/a:/b, a root-only /a/hello made --user app fail with 126
// where a shell running as app runs /b/hello. Every front end: exec, run (gaffer --) and up.
func TestLookupAsTargetUser(t *testing.T) {
	needRoot(t)
	root := pathFixture(t)
	path := func(dirs ...string) string {
		for i, d := range dirs {
			dirs[i] = filepath.Join(root, d)
		}
		return strings.Join(dirs, ":")
	}
	cases := []struct {
		user string
		path string
		prog string
		want string // the script's output, or "exit N"
	}{
		{"app", path("rootonly", "shared"), "hello", "shared"},
		{"app", path("locked", "shared"), "hello", "shared"},
		{"app", path("owner", "shared"), "hello", "shared"},
		{"app", path("grp", "shared"), "hello", "grp"},
		{"app:staff", path("grp", "shared"), "hello", "shared"}, // exactly group 50: not in 2000
		{"app", path("other", "shared"), "hello", "other"},
		{"nobody", path("grp", "owner", "other"), "hello", "other"},
		{"root", path("rootonly", "shared"), "hello", "rootonly"},
		{"0", path("owner", "shared"), "hello", "owner"},
		{"app", path("rootonly"), "hello", "exit 126"},
		{"app", path("rootonly", "locked", "nosuchdir"), "hello", "exit 126"},
		{"app", path("nosuchdir"), "hello", "exit 127"},
		{"app", path("shared"), filepath.Join(root, "rootonly", "hello"), "exit 126"},
		{"app", path("shared"), filepath.Join(root, "locked", "hello"), "exit 126"},
		{"app", path("rootonly"), filepath.Join(root, "grp", "hello"), "grp"},
	}
	for _, c := range cases {
		env := []string{"PATH=" + c.path}
		conf := filepath.Join(t.TempDir(), "gaffer.toml")
		toml := fmt.Sprintf("[settings]\noutput = \"raw\"\nsocket = \"\"\n[process.hello]\ncmd = [%q]\nuser = %q\n", c.prog, c.user)
		if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"exec", "--user", c.user, "--", c.prog},
			{"--user", c.user, "--", c.prog},
			{"up", "-c", conf},
		} {
			code, out, stderr := gafferWithUsers(t, env, args...)
			got := "exit " + strconv.Itoa(code)
			lines := strings.Split(out, "\n")
			if code == 0 {
				got = lines[len(lines)-1]
				if args[0] == "up" && slices.Contains(lines, c.want) {
					got = c.want // up's own lines come around the process's
				}
			}
			if got != c.want {
				t.Errorf("PATH=%s %q: got %q, want %q; stdout %q stderr %q", c.path, args, got, c.want, out, stderr)
			}
		}
	}
}

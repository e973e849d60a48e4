package tests

import (
	"os"
	"path/filepath"
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
	dir := t.TempDir()
	pw, gr := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	if err := os.WriteFile(pw, []byte(fixturePasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gr, []byte(fixtureGroup), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"`
	argv := append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", pw, gr, gafferBin, "exec"}, args...)
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

package tests

// Black-box tests of the API socket's security (issue 7, items 2 and 4): the socket file's mode
// and group cannot be redirected to another file by someone who may write the socket's directory,
// and peers that are not allowed, or allowed uids that use up their share, cannot lock root out.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asUID is setpriv running a command as uid (group nogroup, no supplementary groups).
func asUID(uid int) []string {
	return []string{"setpriv", "--reuid", strconv.Itoa(uid), "--regid", "65534", "--clear-groups"}
}

// secret makes a root-owned 0600 file in a fresh directory and returns its path and a check that
// its mode, owner, group and content are unchanged.
func secret(t *testing.T) (string, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != syscall.S_IFREG|0o600 || int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
			t.Errorf("%s: mode %o uid %d gid %d; want 0600 and gaffer's uid and gid", path, st.Mode, st.Uid, st.Gid)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "secret" {
			t.Errorf("%s: %q %v", path, b, err)
		}
	}
}

// openDirs makes dir and its parents up to the test's temporary root searchable by everyone.
func openDirs(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSocketUntrustedDirectory: a socket directory that others may write and that is not sticky
// is refused, exit 2 with one line, by `gaffer --` and `gaffer up`, and nothing is created in it
// or below it; a sticky world-writable directory (like /tmp) is fine.
func TestSocketUntrustedDirectory(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil { // no umask
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gaffer.toml")
	if err := os.WriteFile(cfg, []byte("[process.x]\ncmd = \"sleep 1000\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "ran")
	want := "refusing the socket's directory " + open + ": others may write it (mode 0777) and it is not sticky"
	for _, sock := range []string{filepath.Join(open, "x.sock"), filepath.Join(open, "new", "x.sock")} {
		code, _, errs := runProc(t, nil, gafferBin, "--socket", sock, "--socket-mode", "0666", "--", "touch", marker)
		oneLineError(t, "gaffer -- in a world-writable directory", code, errs, 2, want)
		code, _, errs = runProc(t, nil, gafferBin, "up", "-c", cfg, "--socket", sock)
		oneLineError(t, "gaffer up in a world-writable directory", code, errs, 2, want)
	}
	if ents, _ := os.ReadDir(open); len(ents) != 0 {
		t.Errorf("created in the refused directory: %v", ents)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the child ran although gaffer refused its socket")
	}

	sticky := filepath.Join(dir, "sticky")
	if err := os.Mkdir(sticky, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	for _, sock := range []string{filepath.Join(sticky, "x.sock"), filepath.Join(sticky, "new", "x.sock")} {
		g := startGaffer(t, startOpts{dir: dir}, "up", "-c", cfg, "--socket", sock, "--socket-mode", "0660")
		stopAtEnd(t, g)
		a := &apiGaffer{gafferRun: g, dir: dir, sock: sock}
		a.waitAPI()
		var st syscall.Stat_t
		if err := syscall.Lstat(sock, &st); err != nil || st.Mode != syscall.S_IFSOCK|0o660 {
			t.Errorf("%s: mode %o %v", sock, st.Mode, err)
		}
		mustCtl(t, sock, "health")
		g.signal(syscall.SIGTERM)
		if code := g.wait(10 * time.Second); code != 0 {
			t.Errorf("exit %d; stderr %s", code, g.stderr.String())
		}
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", sock, err)
		}
	}
	if ents, _ := os.ReadDir(sticky); len(ents) != 1 || ents[0].Name() != "new" {
		t.Errorf("left in the sticky directory: %v", ents)
	}
}

// TestSocketPathNotFollowed: a symlink or a regular file at the socket's path is refused, exit 2,
// and left as it is, and the file a symlink points to keeps its mode and group.
func TestSocketPathNotFollowed(t *testing.T) {
	needRoot(t) // --socket-group of another group
	file, intact := secret(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "x.sock")
	if err := os.Symlink(file, sock); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runProc(t, nil, gafferBin, "--socket", sock, "--socket-mode", "0666", "--socket-group", "nogroup", "--", "true")
	oneLineError(t, "gaffer --socket on a symlink", code, errs, 2, "it exists and is not a socket (a symbolic link, not followed)")
	if l, err := os.Readlink(sock); err != nil || l != file {
		t.Errorf("the symlink changed: %q %v", l, err)
	}
	intact()

	plain := filepath.Join(dir, "plain.sock")
	if err := os.WriteFile(plain, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runProc(t, nil, gafferBin, "--socket", plain, "--socket-mode", "0666", "--socket-group", "nogroup", "--", "true")
	oneLineError(t, "gaffer --socket on a regular file", code, errs, 2, "it exists and is not a socket")
	var st syscall.Stat_t
	if err := syscall.Lstat(plain, &st); err != nil || st.Mode != syscall.S_IFREG|0o600 || st.Gid != 0 {
		t.Errorf("the regular file: mode %o gid %d %v", st.Mode, st.Gid, err)
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep" {
		t.Errorf("the regular file's content: %q", b)
	}
}

// swapper is a perl loop, run as uid nobody, that keeps renaming a symlink to target over path
// (and, where it may not, creating one where path is missing), as an unprivileged attacker who
// may write the socket's directory would.
const swapper = `
my ($path, $target) = @ARGV; $| = 1; my $tmp = "$path.$$"; my $n = 0;
print "ready\n";
while (1) {
	if (-S $path) { symlink($target, $tmp); rename($tmp, $path) and $n++; unlink($tmp) }
	elsif (-l $path) { unlink($path) }
	else { symlink($target, $path) }
}
`

// TestSocketSwapRace: while uid nobody renames symlinks to a root-owned 0600 file over the socket's
// path, gaffer starts again and again with --socket-mode 0666 --socket-group nogroup: the file
// never changes. In a world-writable directory gaffer refuses to start; in a sticky one it starts
// or refuses, never follows.
func TestSocketSwapRace(t *testing.T) {
	needRoot(t)
	file, intact := secret(t)
	base := t.TempDir()
	openDirs(t, base)
	for _, tt := range []struct {
		name string
		mode os.FileMode
	}{{"world-writable", 0o777}, {"sticky", 0o777 | os.ModeSticky}} {
		dir := filepath.Join(base, tt.name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, tt.mode); err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(dir, "x.sock")
		f := follow(t, append(asUID(65534), "perl", "-e", swapper, sock, file)...)
		f.expect("ready", 10*time.Second)
		started := 0
		for range 30 {
			code, _, errs := runProc(t, nil, gafferBin, "--socket", sock, "--socket-mode", "0666", "--socket-group", "nogroup", "--", "true")
			switch {
			case code == 0:
				started++
			case code == 2 && tt.mode == 0o777 && strings.Contains(errs, "others may write it"):
			case code == 2 && tt.mode != 0o777 && (strings.Contains(errs, "not a socket") || strings.Contains(errs, "keeps changing")):
			default:
				t.Errorf("%s: exit %d: %s", tt.name, code, errs)
			}
			intact()
		}
		f.kill()
		if tt.mode == 0o777 && started != 0 {
			t.Errorf("%s: gaffer started %d times", tt.name, started)
		}
		t.Logf("%s: gaffer started %d of 30 times", tt.name, started)
	}
}

// flooder is a perl client that opens N connections to a socket at once. With mode "idle" it
// sends nothing, reads every connection until the server closes it, prints what each got
// ("403=300": 300 got a response with status 403; "none": closed without a response), and
// starts over, for ever. With mode "hold" it asks each for the event stream, prints the status of
// each response head and keeps the connections open.
const flooder = `
use strict; use warnings; use Socket; use IO::Socket::UNIX; use IO::Select;
my ($path, $n, $mode) = @ARGV; $| = 1; $SIG{PIPE} = 'IGNORE';
my $req = "GET /v1/events?follow=1 HTTP/1.1\r\nHost: gaffer\r\n\r\n";
for (my $round = 1; ; $round++) {
	my (@c, %buf, %got);
	for (1 .. $n) {
		my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path);
		if (!$s) { $got{"connect-error"}++; next }
		syswrite($s, $req) if $mode eq "hold";
		push @c, $s;
	}
	print "connected $round\n";
	my $sel = IO::Select->new(@c);
	my $end = time + 60;
	my $status = sub { my ($s) = @_; ($buf{$s} // "") =~ m{^HTTP/1\.1 (\d{3}) } ? $1 : "none" };
	while ($sel->count && time < $end) {
		for my $s ($sel->can_read(1)) {
			my $r = sysread($s, my $b, 4096);
			$buf{$s} .= $b if $r;
			if (!$r) { $got{$status->($s)}++; $sel->remove($s); close($s) }
			elsif ($mode eq "hold" && $buf{$s} =~ /\n/) { $got{$status->($s)}++; $sel->remove($s) }
		}
	}
	$got{"pending"} = $sel->count if $sel->count;
	print "round $round: ", join(" ", map { "$_=$got{$_}" } sort keys %got), "\n";
	if ($mode eq "hold") { sleep 1000 while 1 }
}
`

var roundLine = regexp.MustCompile(`^round \d+: (.*)$`)

// rounds reads the flooder's next report, as status -> count.
func rounds(t *testing.T, f *follower) map[string]int {
	t.Helper()
	l := f.expect("round ", 60*time.Second)
	m := roundLine.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("flooder: %q", l)
	}
	got := map[string]int{}
	for _, kv := range strings.Fields(m[1]) {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.Atoi(v)
		got[k] = n
	}
	return got
}

// rootServed runs `gaffer health` as root n times and fails the test unless each succeeds.
func rootServed(t *testing.T, sock string, n int) {
	t.Helper()
	ok := 0
	var last string
	for range n {
		code, out, errs := ctl(t, sock, nil, "health")
		if code == 0 {
			ok++
		} else {
			last = fmt.Sprintf("exit %d %q %q", code, out, errs)
		}
	}
	if ok != n {
		t.Errorf("gaffer health as root: %d of %d succeeded; last failure %s", ok, n, last)
	}
}

// TestSocketRefusedPeersCannotLockOutRoot: uid nobody, not allowed, keeps opening 300 idle
// connections to a 0666 socket: each gets its 403 at once and is closed, and root's `gaffer health`
// succeeds every time. (Before, nobody's idle connections held all 256 slots for 5 s each and root
// got "too many connections".)
func TestSocketRefusedPeersCannotLockOutRoot(t *testing.T) {
	needRoot(t)
	a := apiRun(t, []string{"--socket-mode", "0666"}, "sleep", "1000")
	openDirs(t, a.dir)
	f := follow(t, append(asUID(65534), "perl", "-e", flooder, a.sock, "300", "idle")...)
	f.expect("connected 1", 60*time.Second)
	rootServed(t, a.sock, 20)
	if code, _ := curl(t, a.sock, "GET", "/healthz", nil); code != 200 {
		t.Errorf("curl GET /healthz as root: %d", code)
	}
	for range 2 {
		if got := rounds(t, f); got["403"] != 300 || len(got) != 1 {
			t.Errorf("nobody's 300 connections: %v; want 403=300", got)
		}
	}
}

// TestSocketAllowedUIDsShareLimits: allowed uids that each hold as many connections as they can
// get (event streams, which stay open) get MaxConns/4 = 64 each, and all together 256 less the 8
// kept for root and gaffer's uid; the rest get 503, and root's `gaffer health` still succeeds.
func TestSocketAllowedUIDsShareLimits(t *testing.T) {
	needRoot(t)
	uids := []int{65534, 65533, 65532, 65531}
	flags := []string{"--socket-mode", "0666"}
	for _, u := range uids {
		flags = append(flags, "--socket-allow-uid", strconv.Itoa(u))
	}
	a := apiRun(t, flags, "sleep", "1000")
	openDirs(t, a.dir)
	served := 0
	for _, u := range uids {
		f := follow(t, append(asUID(u), "perl", "-e", flooder, a.sock, "70", "hold")...)
		got := rounds(t, f)
		if got["200"]+got["503"] != 70 || got["200"] > 64 || got["503"] < 6 {
			t.Errorf("uid %d: %v; want 70 answers, at most 64 of them 200", u, got)
		}
		served += got["200"]
	}
	if served != 256-8 {
		t.Errorf("allowed uids hold %d connections; want 248", served)
	}
	rootServed(t, a.sock, 20)
	// A uid that is not allowed still gets its 403 at once; an allowed one over its share a 503
	// that names the limit.
	code, out, errs := runProc(t, nil, append(asUID(65530), "curl", "-sS", "--unix-socket", a.sock, "http://gaffer/v1/info")...)
	if code != 0 || out != `{"error":"permission denied: uid not allowed by socket_allow_uids"}`+"\n" {
		t.Errorf("uid 65530 (not allowed): curl exit %d %q %s", code, out, errs)
	}
	code, out, errs = runProc(t, nil, append(asUID(65534), "curl", "-sS", "--unix-socket", a.sock, "http://gaffer/v1/info")...)
	if code != 0 || out != `{"error":"too many connections from uid 65534 (at most 64)"}`+"\n" {
		t.Errorf("uid 65534 over its share: curl exit %d %q %s", code, out, errs)
	}
}

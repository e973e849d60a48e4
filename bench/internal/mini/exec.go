// Package mini holds the two measured paths of the benchmarks' reference programs (bench/mingo,
// and bench/depmin, which adds gaffer's required dependencies), with the cheapest means Go offers:
// an init (Init) and an exec that switches the ids of one locked thread (Exec), as gaffer's do.
package mini

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exec runs argv as the user spec ("" keeps the caller's), resolved from /etc/passwd and
// /etc/group; it returns only on failure, with the code to exit with, after a line on stderr
// that begins with prog.
func Exec(prog, spec string, argv []string) int {
	if len(argv) == 0 {
		fmt.Fprintf(os.Stderr, "usage: %s exec [--user SPEC] -- CMD [ARG...]\n", prog)
		return 2
	}
	runtime.LockOSThread()
	if spec != "" {
		uid, gid, groups, err := lookupUser(spec)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
			return 2
		}
		if err := unix.Setgroups(groups); err != nil {
			fmt.Fprintf(os.Stderr, "%s: setgroups: %v\n", prog, err)
			return 1
		}
		// This thread's ids only: execve keeps them and ends the other threads (the 32-bit id
		// calls on amd64 and arm64, where the benchmarks run).
		if _, _, e := unix.RawSyscall(unix.SYS_SETGID, uintptr(gid), 0, 0); e != 0 {
			fmt.Fprintf(os.Stderr, "%s: setgid: %v\n", prog, e)
			return 1
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETUID, uintptr(uid), 0, 0); e != 0 {
			fmt.Fprintf(os.Stderr, "%s: setuid: %v\n", prog, e)
			return 1
		}
	}
	path, err := LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		return 127
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	return 126
}

// lookupUser resolves user, uid, user:group or uid:gid: the uid and primary gid from /etc/passwd
// (a number not listed stands for itself, with gid 0), the groups from /etc/group (those listing
// the user, with the primary group first), or only the group given after ':'.
func lookupUser(spec string) (uid, gid int, groups []int, err error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	name := u
	uid, gid = -1, 0
	if err := scan("/etc/passwd", func(f []string) bool {
		if len(f) < 4 || (f[0] != u && f[2] != u) {
			return false
		}
		name = f[0]
		uid, _ = strconv.Atoi(f[2])
		gid, _ = strconv.Atoi(f[3])
		return true
	}); err != nil {
		return 0, 0, nil, err
	}
	if uid < 0 {
		if uid, err = strconv.Atoi(u); err != nil {
			return 0, 0, nil, fmt.Errorf("no user %q", u)
		}
	}
	if hasGroup {
		found := false
		if err := scan("/etc/group", func(f []string) bool {
			if len(f) < 3 || (f[0] != g && f[2] != g) {
				return false
			}
			gid, _ = strconv.Atoi(f[2])
			found = true
			return true
		}); err != nil {
			return 0, 0, nil, err
		}
		if !found {
			if gid, err = strconv.Atoi(g); err != nil {
				return 0, 0, nil, fmt.Errorf("no group %q", g)
			}
		}
		return uid, gid, []int{gid}, nil
	}
	groups = []int{gid}
	err = scan("/etc/group", func(f []string) bool {
		if len(f) < 4 {
			return false
		}
		for _, m := range strings.Split(f[3], ",") {
			if m == name {
				if n, err := strconv.Atoi(f[2]); err == nil && n != gid {
					groups = append(groups, n)
				}
			}
		}
		return false
	})
	return uid, gid, groups, err
}

// scan calls match with the colon-separated fields of each line of path until it returns true.
func scan(path string, match func([]string) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if match(strings.Split(sc.Text(), ":")) {
			return nil
		}
	}
	return sc.Err()
}

// LookPath finds name in $PATH (or takes it as a path when it holds a slash), executable by this
// thread's ids.
func LookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, unix.Access(name, unix.X_OK)
	}
	path, ok := os.LookupEnv("PATH")
	if !ok {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", name)
}

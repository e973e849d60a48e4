// Command mingo is a reference for the benchmarks, not a product: the smallest Go program that
// does what gaffer does on the measured paths, with the cheapest means Go offers and nothing else:
// no CLI library, no options, no config, no API. What gaffer costs beyond it (start-up, memory,
// forwarding delay) is gaffer's own; what mingo costs beyond tini, catatonit and gosu is Go's.
//
//	mingo -- CMD [ARG...]                 an init, as gaffer -- CMD
//	mingo exec [--user SPEC] -- CMD [ARG...]  switch user and exec, as gaffer exec (and gosu)
//
// As an init it keeps gaffer's signal rule (DESIGN.md rule 2): signal.Notify for the signals that
// could harm it (signals.Early) first, then the child (syscall.ForkExec, in its own process group),
// then the other forwardable signals one Notify each on a goroutine; it forwards every signal but
// CHLD to the child, reaps everything, and exits with the child's code. exec resolves SPEC (user,
// uid, user:group or uid:gid) from /etc/passwd and /etc/group, switches the ids of one locked
// thread and execs from it, as gaffer exec does.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"gaffer/signals"

	"golang.org/x/sys/unix"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "exec" {
		os.Exit(execMode(args[1:]))
	}
	sigs := make(chan os.Signal, 1024)
	signal.Notify(sigs, signals.Early()...)
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: mingo -- CMD [ARG...] | mingo exec [--user SPEC] -- CMD [ARG...]")
		os.Exit(2)
	}
	path, err := lookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mingo: %v\n", err)
		os.Exit(127)
	}
	if os.Getpid() != 1 {
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	child, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "mingo: %v\n", err)
		os.Exit(126)
	}
	go func() {
		for _, s := range signals.Late() {
			signal.Notify(sigs, s)
		}
	}()
	code := -1
	for s := range sigs {
		sig := s.(syscall.Signal)
		if sig != unix.SIGCHLD {
			_ = unix.Kill(child, sig)
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.ECHILD) && code >= 0 {
				os.Exit(code)
			}
			if err != nil || pid <= 0 {
				break
			}
			if pid == child {
				code = ws.ExitStatus()
				if ws.Signaled() {
					code = 128 + int(ws.Signal())
				}
			}
		}
	}
}

// execMode is `mingo exec [--user SPEC] -- CMD [ARG...]`.
func execMode(args []string) int {
	var spec string
	if len(args) >= 2 && args[0] == "--user" {
		spec, args = args[1], args[2:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: mingo exec [--user SPEC] -- CMD [ARG...]")
		return 2
	}
	runtime.LockOSThread()
	if spec != "" {
		uid, gid, groups, err := lookupUser(spec)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mingo: %v\n", err)
			return 2
		}
		if err := unix.Setgroups(groups); err != nil {
			fmt.Fprintf(os.Stderr, "mingo: setgroups: %v\n", err)
			return 1
		}
		// This thread's ids only: execve keeps them and ends the other threads (the 32-bit id
		// calls on amd64 and arm64, where the benchmarks run).
		if _, _, e := unix.RawSyscall(unix.SYS_SETGID, uintptr(gid), 0, 0); e != 0 {
			fmt.Fprintf(os.Stderr, "mingo: setgid: %v\n", e)
			return 1
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETUID, uintptr(uid), 0, 0); e != 0 {
			fmt.Fprintf(os.Stderr, "mingo: setuid: %v\n", e)
			return 1
		}
	}
	path, err := lookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "mingo: %v\n", err)
		return 127
	}
	err = syscall.Exec(path, args, os.Environ())
	fmt.Fprintf(os.Stderr, "mingo: %v\n", err)
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

// lookPath finds name in $PATH (or takes it as a path when it holds a slash), executable by this
// thread's ids.
func lookPath(name string) (string, error) {
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

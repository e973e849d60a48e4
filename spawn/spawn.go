// Package spawn turns a Spec (argv, environment, directory, identity, terminal, streams) into a
// running child registered with the reaper. It never waits for a child: the reaper does.
package spawn

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"

	"gaffer/reaper"

	"golang.org/x/sys/unix"
)

// DefaultPath is searched when the child's environment has no PATH, as Debian's shells do.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Exit codes for a command that could not be started, as shells use them.
const (
	CodeNotFound      = 127
	CodeNotExecutable = 126
)

// Spec says how to start one child.
type Spec struct {
	Name     string    // used in error messages
	Argv     []string  // Argv[0] is looked up in the PATH of Env
	Env      []string  // the child's whole environment
	Dir      string    // working directory; "" keeps gaffer's
	Identity *Identity // nil keeps gaffer's credentials
	// Foreground makes the child's process group the foreground group of the controlling terminal
	// on Stdin, so that Ctrl-C and job control reach it. The child always gets its own group.
	Foreground bool
	// Session starts the child in a new session with Stdin as its controlling terminal (a pty that
	// gaffer made for it); the session is also its process group.
	Session    bool
	Stdin      *os.File
	Stdout     *os.File
	Stderr     *os.File
	ExtraFiles []*os.File // become fd 3, 4, ...
	// CgroupFD, when UseCgroupFD is set, is an open cgroup v2 directory the child is born in
	// (clone3 with CLONE_INTO_CGROUP): it never runs outside it.
	CgroupFD    int
	UseCgroupFD bool
}

// Process is a started child. Its exit arrives once on Exit.
type Process struct {
	Pid  int
	Exit <-chan reaper.Exit
	// pidfd is the child's pidfd from clone(CLONE_PIDFD), as an *os.File so that a Signal racing
	// with Release never reaches a reused descriptor number; nil when the kernel gave none.
	pidfd *os.File
}

// Release closes the child's pidfd. Call it after the exit arrived; it never waits. Signal then
// fails with os.ErrProcessDone.
func (p *Process) Release() {
	if p.pidfd != nil {
		_ = p.pidfd.Close()
	}
}

// Signal sends sig to the child through its pidfd, so it can never reach another process that
// reused the pid after the child was reaped; it then fails with os.ErrProcessDone. A kernel
// without pidfds (before 5.2) gives none: the signal then goes by pid, which is ours until the
// loop that signals has reaped it (DESIGN.md rule 8).
func (p *Process) Signal(sig syscall.Signal) error {
	var err error
	if p.pidfd == nil {
		err = unix.Kill(p.Pid, sig)
	} else {
		rc, cerr := p.pidfd.SyscallConn()
		if cerr == nil {
			cerr = rc.Control(func(fd uintptr) { err = unix.PidfdSendSignal(int(fd), sig, nil, 0) })
		}
		if cerr != nil {
			return os.ErrProcessDone // released
		}
	}
	if errors.Is(err, unix.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// StartError is a child that could not be started. Code is what a shell would exit with.
type StartError struct {
	Name string
	Code int
	Err  error
}

func (e *StartError) Error() string { return fmt.Sprintf("cannot run %s: %v", e.Name, e.Err) }
func (e *StartError) Unwrap() error { return e.Err }

// Start starts the child described by s and registers it with r.
func Start(r *reaper.Reaper, s Spec) (*Process, error) {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return nil, &StartError{Name: fmt.Sprintf("%q", s.Name), Code: CodeNotFound, Err: errors.New("empty command")}
	}
	path, err := LookPathAs(s.Argv[0], s.Dir, s.Env, s.Identity)
	if err != nil {
		return nil, err
	}
	files := []*os.File{s.Stdin, s.Stdout, s.Stderr}
	for i, f := range files {
		if f == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return nil, fmt.Errorf("spawn %s: %w", s.Name, err)
			}
			defer null.Close()
			files[i] = null
		}
	}
	fds := make([]uintptr, 0, len(files)+len(s.ExtraFiles))
	for _, f := range append(files, s.ExtraFiles...) {
		fds = append(fds, f.Fd())
	}
	pidfd := -1
	sys := sysProcAttr(s)
	sys.PidFD = &pidfd
	attr := &syscall.ProcAttr{Dir: s.Dir, Env: s.Env, Files: fds, Sys: sys}
	if attr.Env == nil {
		attr.Env = []string{}
	}

	// The child inherits the signal mask of the thread that forks it. Go threads keep whatever mask
	// gaffer itself inherited, so when that blocked anything, or this goroutine's thread blocks
	// something (a caller locked to a thread it changed), clear it on a locked thread: the child
	// starts with nothing blocked. Usually nothing is blocked, and the lock, which makes every
	// block of this goroutine a hand-off between threads, is left out: an unlocked goroutine may
	// move, but only between threads with the inherited, empty, mask.
	if inheritedMask || threadBlocks() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var empty unix.Sigset_t
		_ = unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil)
	}

	// syscall.ForkExec rather than os.StartProcess: the latter probes, once per process, whether
	// pidfds work, by forking a child of its own (pidfd_open, waitid, pidfd_send_signal and a
	// clone that exits: 0.1-0.15 ms of a 5 ms `gaffer -- /bin/true`). Asking clone for the pidfd
	// is the same test: a kernel without CLONE_PIDFD leaves pidfd at -1.
	pid, exit, err := r.Start(func() (int, error) {
		return syscall.ForkExec(path, s.Argv, attr)
	})
	runtime.KeepAlive(files)
	runtime.KeepAlive(s.ExtraFiles)
	if err != nil {
		return nil, &StartError{Name: quote(s.Argv[0]), Code: execCode(err), Err: unwrapPathError(err)}
	}
	p := &Process{Pid: pid, Exit: exit}
	if pidfd >= 0 {
		p.pidfd = os.NewFile(uintptr(pidfd), "pidfd")
	}
	return p, nil
}

// inheritedMask says whether gaffer's threads block signals: every thread the Go runtime starts
// takes the mask gaffer was started with (less the signals the runtime needs), and package
// initialisation runs on the first thread before anything changes it. Read once; never written.
var inheritedMask = threadBlocks()

// threadBlocks reports whether the calling thread blocks any signal.
func threadBlocks() bool {
	var cur unix.Sigset_t
	_ = unix.PthreadSigmask(unix.SIG_BLOCK, nil, &cur)
	return cur != unix.Sigset_t{}
}

func sysProcAttr(s Spec) *syscall.SysProcAttr {
	sys := &syscall.SysProcAttr{Setpgid: true}
	if s.Session {
		// setsid makes the child leader of a new group too; setpgid on a leader would fail.
		sys = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	} else if s.Foreground {
		sys.Foreground = true
		sys.Ctty = 0
	}
	sys.UseCgroupFD, sys.CgroupFD = s.UseCgroupFD, s.CgroupFD
	if id := s.Identity; id != nil {
		sys.Credential = &syscall.Credential{Uid: id.UID, Gid: id.GID, Groups: id.Groups}
		if sys.Credential.Groups == nil {
			sys.Credential.Groups = []uint32{}
		}
	}
	return sys
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func execCode(err error) int {
	if errors.Is(err, unix.ENOENT) {
		return CodeNotFound
	}
	return CodeNotExecutable
}

// LookPath finds the program a child with gaffer's own credentials would run: a name with a slash
// is taken as a path (relative to dir), any other is searched in the PATH of env, or DefaultPath
// when env has none. Not found anywhere is CodeNotFound; found but not executable, with no later
// PATH entry that is, CodeNotExecutable.
func LookPath(name, dir string, env []string) (string, error) {
	return LookPathAs(name, dir, env, nil)
}

// LookPathAs is LookPath for a child that runs as id (nil: gaffer's own credentials). gaffer looks
// up as root, before the child switches: a file only root may run, or a directory only root may
// search, counts only if id may execute it and search every directory on the way. Otherwise a
// root-only /a/hello before /b/hello in PATH ended in 126 where a shell running as the user runs
// /b/hello. The check is the kernel's on the mode bits (see mayExec); ACLs, capabilities, LSMs and
// noexec mounts are not modelled: such a file still ends in 126, at exec.
func LookPathAs(name, dir string, env []string, id *Identity) (string, error) {
	if name == "" {
		return "", &StartError{Name: quote(name), Code: CodeNotFound, Err: errors.New("empty command")}
	}
	path, err := lookPath(name, dir, env, id)
	if err != nil {
		return "", err
	}
	// The child changes into dir before exec: a path relative to gaffer's directory would then
	// point elsewhere.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path, nil
}

func lookPath(name, dir string, env []string, id *Identity) (string, *StartError) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if err := executable(p, id); err != nil {
			return "", err.named(name)
		}
		return p, nil
	}
	pathList := DefaultPath
	if v, ok := Getenv(env, "PATH"); ok {
		pathList = v
	}
	var notExec *StartError
	for _, d := range filepath.SplitList(pathList) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, name)
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		err := executable(p, id)
		if err == nil {
			return p, nil
		}
		// A PATH entry that is not a directory holds no command, as in sh.
		if err.Code == CodeNotExecutable && notExec == nil && !errors.Is(err.Err, unix.ENOTDIR) {
			notExec = err.named(name)
		}
	}
	if notExec != nil {
		return "", notExec
	}
	return "", &StartError{Name: quote(name), Code: CodeNotFound, Err: errors.New("not found in PATH")}
}

// executable checks that p is a file that id (nil: gaffer itself) may execute.
func executable(p string, id *Identity) *StartError {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &StartError{Code: CodeNotFound, Err: errors.New("no such file")}
		}
		return &StartError{Code: CodeNotExecutable, Err: unwrapPathError(err)}
	}
	if st.IsDir() {
		return &StartError{Code: CodeNotExecutable, Err: errors.New("is a directory")}
	}
	if st.Mode()&0o111 == 0 {
		return &StartError{Code: CodeNotExecutable, Err: errors.New("permission denied (not executable)")}
	}
	if id == nil {
		if unix.Access(p, unix.X_OK) != nil {
			return &StartError{Code: CodeNotExecutable, Err: errors.New("permission denied (not executable)")}
		}
		return nil
	}
	if !mayExec(p, st, id) {
		return &StartError{Code: CodeNotExecutable, Err: fmt.Errorf("permission denied (not executable by uid %d)", id.UID)}
	}
	return nil
}

// mayExec reports whether id may execute the file p, stat'ed as st, and search every directory on
// the way to it: those of p as written and, when p goes through symbolic links, those of the
// path they resolve to.
func mayExec(p string, st os.FileInfo, id *Identity) bool {
	if !permits(st, id) {
		return false
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return false
	}
	dirs := parents(abs)
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		dirs = append(dirs, parents(real)...)
	}
	for _, d := range dirs {
		dst, err := os.Stat(d)
		if err != nil || !permits(dst, id) {
			return false
		}
	}
	return true
}

// parents lists the directories above the absolute path p, from the root down.
func parents(p string) []string {
	var out []string
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		out = append(out, d)
		if d == "/" || d == "." {
			break
		}
	}
	slices.Reverse(out)
	return out
}

// permits applies the kernel's rule for execute (search, on a directory) permission: root may
// search any directory and execute a file with one x bit; anyone else gets the owner's bits if
// they own the file, else the group's if the file's group is their gid or one of their groups,
// else the others' bits. The classes do not add up: an owner denied by the owner's bits is denied.
func permits(st os.FileInfo, id *Identity) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	perm := st.Mode().Perm()
	switch {
	case id.UID == 0:
		return st.IsDir() || perm&0o111 != 0
	case sys.Uid == id.UID:
		return perm&0o100 != 0
	case sys.Gid == id.GID || slices.Contains(id.Groups, sys.Gid):
		return perm&0o010 != 0
	}
	return perm&0o001 != 0
}

func (e *StartError) named(name string) *StartError {
	e.Name = quote(name)
	return e
}

// Getenv looks key up in an environment list; the last assignment wins, as in execve.
func Getenv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Setenv returns env with key set to value, replacing every earlier assignment of key.
func Setenv(env []string, key, value string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

// Environ builds a child's environment: base (nil for an empty one), then HOME from id when id is
// set, then the explicit K=V assignments in set, which win over both.
func Environ(base []string, id *Identity, set []string) []string {
	env := append([]string{}, base...)
	if id != nil {
		env = Setenv(env, "HOME", id.Home)
	}
	for _, kv := range set {
		k, v, _ := strings.Cut(kv, "=")
		env = Setenv(env, k, v)
	}
	return env
}

// ForegroundTTY reports whether f is a terminal that is gaffer's controlling terminal with gaffer's
// process group in the foreground: only then may a child take the foreground from it. A terminal
// that is not ours, or a job started in the background, is left alone.
func ForegroundTTY(f *os.File) bool {
	if f == nil {
		return false
	}
	fd := int(f.Fd())
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return false
	}
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil {
		return false
	}
	return fg == unix.Getpgrp()
}

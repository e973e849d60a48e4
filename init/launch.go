package pid1

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gaffer/config"
	"gaffer/reaper"
	"gaffer/relay"
	"gaffer/spawn"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// child is a started process as the supervisor sees it. Its exit arrives once on Exit.
type child interface {
	PID() int
	Exit() <-chan reaper.Exit
	// Signal signals the process alone, through its pidfd (never a process that reused the pid).
	Signal(sig syscall.Signal) error
	// SignalGroup signals its process group.
	SignalGroup(sig syscall.Signal) error
	// Release frees what is held for the process, once its exit arrived.
	Release()
}

// launcher starts the processes of the supervisor and what goes with them (pipes, relays,
// probes). The real one forks through the reaper; tests give a fake that starts nothing.
type launcher interface {
	// start starts in's process as configured, with its streams wired and relayed.
	start(in *instance) (child, error)
	// startProbe starts an exec probe of in (readiness or health: cmd is its command), as in
	// runs: user, groups, cwd, environment.
	startProbe(in *instance, cmd string) (child, error)
	// check runs a readiness probe that starts no process (tcp, http, https, file) once.
	check(ctx context.Context, p config.Probe) error
	// ended is told that in's process exited: the drain of its output is bounded from now on,
	// its stdin and streams are closed.
	ended(in *instance)
}

// proc adapts a spawn.Process to child.
type proc struct{ p *spawn.Process }

func (c proc) PID() int                      { return c.p.Pid }
func (c proc) Exit() <-chan reaper.Exit      { return c.p.Exit }
func (c proc) Signal(s syscall.Signal) error { return c.p.Signal(s) }
func (c proc) Release()                      { c.p.Release() }
func (c proc) SignalGroup(s syscall.Signal) error {
	if err := unix.Kill(-c.p.Pid, s); err != nil {
		return err
	}
	return nil
}

// ioState is what gaffer holds of a running instance's streams.
type ioState struct {
	stdin *os.File // gaffer's end of its stdin pipe (redirect_input), or the pty master
	// stdinShared: stdin is the pty master, which its relay owns and closes.
	stdinShared bool
	streams     []*os.File // gaffer's ends of custom streams
	readers     []output   // streams being relayed, for bounding the drain
	writeMu     sync.Mutex // one stdin or stream write at a time
}

// output is one stream of a process that gaffer relays: stdout ("out"), stderr ("err"), or a
// custom stream (its label, custom set).
type output struct {
	f      *os.File
	stream string
	custom bool
}

// osLauncher starts real processes through the reaper and relays their output.
type osLauncher struct {
	r      *reaper.Reaper
	out    *relay.Writer
	errOut *relay.Writer
	relays *sync.WaitGroup // output being copied; waited for before gaffer exits
	warnf  Logf
	sd     *systemd   // notify socket, listening sockets (notify.go)
	res    *resources // per-process cgroups (oom.go)
}

func (l *osLauncher) start(in *instance) (child, error) {
	spec, closeAfter, err := l.spec(in)
	if err != nil {
		return nil, err
	}
	p, err := l.spawn(in, spec) // in its own cgroup when it sets limits (oom.go)
	for _, f := range closeAfter {
		_ = f.Close()
	}
	if err != nil {
		// No relay owns the pipes of a child that never ran.
		for _, o := range in.io.readers {
			_ = o.f.Close()
		}
		in.io.readers = nil
		closeStreams(in)
		return nil, err
	}
	for _, o := range in.io.readers {
		l.relay(in, p.Pid, o)
	}
	return proc{p}, nil
}

func (l *osLauncher) ended(in *instance) {
	deadline := time.Now().Add(drainWait)
	for _, o := range in.io.readers {
		_ = o.f.SetReadDeadline(deadline)
	}
	in.io.readers = nil
	closeStreams(in)
}

func (l *osLauncher) check(ctx context.Context, p config.Probe) error { return probeOnce(ctx, p) }

// startProbe runs the probe command with /bin/sh as the process itself runs. Its exit comes
// through the reaper like every other child's.
func (l *osLauncher) startProbe(in *instance, cmd string) (child, error) {
	spec, err := baseSpec(in)
	if err != nil {
		return nil, err
	}
	spec.Name = in.name + " probe"
	spec.Argv = []string{"/bin/sh", "-c", cmd}
	p, err := spawn.Start(l.r, spec)
	if err != nil {
		return nil, err
	}
	return proc{p}, nil
}

// relay copies one of in's output streams to gaffer's stdout (stdout, custom streams) or stderr,
// labelled as redirect_output says.
func (l *osLauncher) relay(in *instance, pid int, o output) {
	name, stream, dst := in.name, o.stream, l.out
	labels := in.cfg.RedirectOutput
	switch {
	case o.custom:
		name = in.name + ":" + o.stream
	case o.stream == "err":
		dst = l.errOut
		if len(labels) > 1 {
			stream = labels[1]
		}
	case len(labels) > 0:
		stream = labels[0]
	}
	ring := in.logs
	tap := func(b []byte) { ring.add(stream, b) }
	if w := in.logReady; w != nil && !o.custom {
		tap = func(b []byte) {
			ring.add(stream, b)
			w.scan(b)
		}
	}
	src := relay.Source{Name: name, Pid: pid, Stream: stream, Color: in.color, Tap: tap}
	l.relays.Add(1)
	go func() {
		defer l.relays.Done()
		defer survive(l.warnf, "relay of "+name)
		defer o.f.Close()
		_ = dst.Copy(o.f, src)
	}()
}

// baseSpec is how in's processes run, its probes included: identity, directory, environment.
func baseSpec(in *instance) (spawn.Spec, error) {
	p := in.cfg
	var base []string
	if !p.ClearEnv {
		base = os.Environ()
	}
	var sets []string
	for _, k := range slices.Sorted(maps.Keys(p.Env)) {
		sets = append(sets, k+"="+p.Env[k])
	}
	sets = append(sets, "GAFFER_PROCESS_NAME="+p.Name, "GAFFER_PROCESS_INSTANCE="+strconv.Itoa(in.index))
	for i, label := range p.CustomStreams {
		// After the listening sockets of socket activation, which start at fd 3 (notify.go).
		sets = append(sets, "GAFFER_STREAM_"+envName(label)+"="+strconv.Itoa(3+len(p.Listen)+i))
	}
	spec := spawn.Spec{Name: in.name, Dir: p.Cwd}
	if p.User != "" {
		id, err := spawn.SystemUsers().Lookup(p.User)
		if err != nil {
			return spec, fmt.Errorf("user %s: %w", p.User, err)
		}
		spec.Identity = &id
	}
	spec.Env = spawn.Environ(base, spec.Identity, sets)
	return spec, nil
}

// spec builds the child of in: argv, environment, identity, and its streams. closeAfter are the
// child's ends, which gaffer closes once the child has them.
func (l *osLauncher) spec(in *instance) (spawn.Spec, []*os.File, error) {
	p := in.cfg
	spec, err := baseSpec(in)
	if err != nil {
		return spec, nil, err
	}
	spec.Argv = append([]string{}, p.Cmd...)
	for _, a := range p.Args {
		arg := os.Expand(a, func(k string) string { v, _ := spawn.Getenv(spec.Env, k); return v })
		if p.Shell && len(spec.Argv) == 3 {
			spec.Argv[2] += " " + shellQuote(arg)
		} else {
			spec.Argv = append(spec.Argv, arg)
		}
	}

	var closeAfter []*os.File
	io := &in.io
	io.readers = nil
	fail := func(err error) (spawn.Spec, []*os.File, error) {
		for _, f := range closeAfter {
			_ = f.Close()
		}
		for _, o := range io.readers {
			_ = o.f.Close()
		}
		io.readers = nil
		closeStreams(in)
		return spec, nil, err
	}
	if p.TTY {
		master, slave, err := pty.Open()
		if err != nil {
			return fail(fmt.Errorf("open pty: %w", err))
		}
		closeAfter = append(closeAfter, slave)
		spec.Stdin, spec.Stdout, spec.Stderr, spec.Session = slave, slave, slave, true
		// The relay owns the master and closes it; stdin writes share it.
		io.readers = append(io.readers, output{f: master, stream: "out"})
		if p.RedirectInput {
			io.stdin, io.stdinShared = master, true
		}
	} else {
		spec.Stdout, spec.Stderr = os.Stdout, os.Stderr
		for i, name := range []string{"out", "err"} {
			if i >= len(p.RedirectOutput) {
				break
			}
			r, w, err := os.Pipe()
			if err != nil {
				return fail(fmt.Errorf("pipe: %w", err))
			}
			closeAfter = append(closeAfter, w)
			io.readers = append(io.readers, output{f: r, stream: name})
			if i == 0 {
				spec.Stdout = w
			} else {
				spec.Stderr = w
			}
		}
		if p.RedirectInput {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(fmt.Errorf("pipe: %w", err))
			}
			closeAfter = append(closeAfter, r)
			spec.Stdin, io.stdin = r, w
		}
	}
	if err := l.sd.prepare(in, &spec); err != nil {
		return fail(err) // the systemd protocols: env, listening sockets as fd 3 ..., the shim
	}
	for _, label := range p.CustomStreams {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("stream %s: %w", label, err))
		}
		// Non-blocking, so that the runtime poller serves it and a read deadline can end the drain.
		_ = unix.SetNonblock(fds[0], true)
		mine := os.NewFile(uintptr(fds[0]), "stream "+label)
		theirs := os.NewFile(uintptr(fds[1]), label)
		closeAfter = append(closeAfter, theirs)
		spec.ExtraFiles = append(spec.ExtraFiles, theirs)
		io.streams = append(io.streams, mine)
		io.readers = append(io.readers, output{f: mine, stream: label, custom: true})
	}
	return spec, closeAfter, nil
}

// closeStreams closes gaffer's ends of in's stdin and custom streams.
func closeStreams(in *instance) {
	if in.io.stdin != nil && !in.io.stdinShared {
		_ = in.io.stdin.Close()
	}
	in.io.stdin, in.io.stdinShared = nil, false
	in.io.streams = nil
}

// survive keeps a panic in one of gaffer's goroutines from ending PID 1, and the container with
// it: the goroutine's work is lost, gaffer goes on. Deferred first thing in each.
func survive(warnf Logf, what string) {
	if r := recover(); r != nil {
		warnf("internal error in %s: %v", what, r)
	}
}

// startCode is the exit code that stands for a start that failed with err.
func startCode(err error) int {
	var se *spawn.StartError
	if errors.As(err, &se) {
		return se.Code
	}
	return spawn.CodeNotExecutable
}

// envName turns a stream label into the tail of an environment variable name.
func envName(label string) string {
	b := []byte(strings.ToUpper(label))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

package reaper

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestCode(t *testing.T) {
	exited := func(n int) unix.WaitStatus { return unix.WaitStatus(n << 8) }
	signaled := func(n int) unix.WaitStatus { return unix.WaitStatus(n) }
	tests := []struct {
		name string
		ws   unix.WaitStatus
		want int
	}{
		{"exited 0", exited(0), 0},
		{"exited 1", exited(1), 1},
		{"exited 127", exited(127), 127},
		{"exited 255", exited(255), 255},
		{"signaled KILL", signaled(9), 137},
		{"signaled TERM", signaled(15), 143},
		{"signaled INT", signaled(2), 130},
		{"signaled SEGV with core", signaled(11) | 0x80, 139},
		{"signaled RTMAX", signaled(64), 192},
		{"stopped", unix.WaitStatus(0x7f | int(unix.SIGSTOP)<<8), 255},
	}
	for _, tt := range tests {
		if got := Code(tt.ws); got != tt.want {
			t.Errorf("Code(%s = %#x) = %d, want %d", tt.name, uint32(tt.ws), got, tt.want)
		}
		if got := (Exit{Pid: 1, Status: tt.ws}).Code(); got != tt.want {
			t.Errorf("Exit{%s}.Code() = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// startProcess starts argv through r and returns its pid and exit channel.
func startProcess(t *testing.T, r *Reaper, argv ...string) (int, <-chan Exit) {
	t.Helper()
	var proc *os.Process
	pid, ch, err := r.Start(func() (int, error) {
		p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{})
		if err != nil {
			return 0, err
		}
		proc = p
		return p.Pid, nil
	})
	if err != nil {
		t.Fatalf("Start(%q): %v", argv, err)
	}
	if proc == nil || pid != proc.Pid {
		t.Fatalf("Start(%q) returned pid %d, fork made %v", argv, pid, proc)
	}
	t.Cleanup(func() { _ = proc.Release() })
	return pid, ch
}

// reapUntil calls r.Reap until done says so, collecting orphans, or fails after a deadline.
func reapUntil(t *testing.T, r *Reaper, done func(orphans []Exit, none bool) bool) []Exit {
	t.Helper()
	var all []Exit
	deadline := time.Now().Add(5 * time.Second)
	for {
		orphans, none, err := r.Reap()
		if err != nil {
			t.Fatalf("Reap: %v", err)
		}
		all = append(all, orphans...)
		if done(all, none) {
			return all
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met before the deadline (orphans so far %v, none %v)", all, none)
		}
		time.Sleep(time.Millisecond)
	}
}

// drain reaps until this process has no children left.
func drain(t *testing.T, r *Reaper) {
	t.Helper()
	reapUntil(t, r, func(_ []Exit, none bool) bool { return none })
}

func TestReapNone(t *testing.T) {
	r := New()
	drain(t, r)
	orphans, none, err := r.Reap()
	if err != nil || !none || len(orphans) != 0 {
		t.Errorf("Reap with no children = %v, %v, %v; want nothing, none, no error", orphans, none, err)
	}
}

func TestStartForkError(t *testing.T) {
	r := New()
	want := errors.New("fork failed")
	pid, ch, err := r.Start(func() (int, error) { return 0, want })
	if !errors.Is(err, want) || pid != 0 || ch != nil {
		t.Errorf("Start with a failing fork = %d, %v, %v; want 0, nil, %v", pid, ch, err, want)
	}
	if len(r.waiters) != 0 {
		t.Errorf("a failed start left %d waiters", len(r.waiters))
	}
}

func TestReapManyChildren(t *testing.T) {
	const n = 50
	r := New()
	drain(t, r)
	chans := map[int]<-chan Exit{}
	for range n {
		pid, ch := startProcess(t, r, "/bin/true")
		if _, dup := chans[pid]; dup {
			t.Fatalf("pid %d started twice", pid)
		}
		chans[pid] = ch
	}
	got := map[int]Exit{}
	orphans := reapUntil(t, r, func(_ []Exit, _ bool) bool {
		for pid, ch := range chans {
			select {
			case e := <-ch:
				if _, dup := got[pid]; dup {
					t.Errorf("pid %d: second exit %v", pid, e)
				}
				got[pid] = e
			default:
			}
		}
		return len(got) == n
	})
	if len(orphans) != 0 {
		t.Errorf("registered children came back as orphans: %v", orphans)
	}
	for pid, e := range got {
		if e.Pid != pid {
			t.Errorf("channel of pid %d got the exit of pid %d", pid, e.Pid)
		}
		if e.Code() != 0 {
			t.Errorf("pid %d: /bin/true exited %d", pid, e.Code())
		}
	}
	// Each exit is delivered once: nothing more arrives after everything is reaped.
	drain(t, r)
	for pid, ch := range chans {
		select {
		case e := <-ch:
			t.Errorf("pid %d: second exit %v", pid, e)
		default:
		}
	}
	if reaped, orph := r.Counts(); reaped != n || orph != 0 {
		t.Errorf("Counts() = %d, %d; want %d, 0", reaped, orph, n)
	}
	if len(r.waiters) != 0 {
		t.Errorf("%d waiters left after every exit was delivered", len(r.waiters))
	}
}

func TestReapConcurrentWithStart(t *testing.T) {
	// A reaping loop runs all the time beside Start, as in gaffer: a child that exits at once must
	// still reach its channel, never come back as an orphan.
	const n = 50
	r := New()
	drain(t, r)
	stop, done := make(chan struct{}), make(chan struct{})
	var orphans []Exit // written by the reaping goroutine until done is closed
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			o, _, err := r.Reap()
			if err != nil {
				t.Errorf("Reap: %v", err)
			}
			orphans = append(orphans, o...)
		}
	}()
	halt := sync.OnceFunc(func() { close(stop); <-done })
	defer halt()
	chans := map[int]<-chan Exit{}
	for range n {
		pid, ch := startProcess(t, r, "/bin/true")
		chans[pid] = ch
	}
	deadline := time.After(5 * time.Second)
	for pid, ch := range chans {
		select {
		case e := <-ch:
			if e.Pid != pid || e.Code() != 0 {
				t.Errorf("pid %d: exit %+v", pid, e)
			}
		case <-deadline:
			t.Fatalf("pid %d: no exit delivered", pid)
		}
	}
	halt()
	if len(orphans) != 0 {
		t.Errorf("registered children came back as orphans: %v", orphans)
	}
	drain(t, r)
	if reaped, orph := r.Counts(); reaped != n || orph != 0 {
		t.Errorf("Counts() = %d, %d; want %d, 0", reaped, orph, n)
	}
}

func TestReapExitStatus(t *testing.T) {
	r := New()
	drain(t, r)
	tests := []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"exit 255", 255},
		{"kill -KILL $$", 137},
		{"kill -TERM $$", 143},
	}
	type started struct {
		pid  int
		ch   <-chan Exit
		want int
	}
	var all []started
	for _, tt := range tests {
		pid, ch := startProcess(t, r, "/bin/sh", "-c", tt.script)
		all = append(all, started{pid, ch, tt.want})
	}
	for i, s := range all {
		var e Exit
		reapUntil(t, r, func(_ []Exit, _ bool) bool {
			select {
			case e = <-s.ch:
				return true
			default:
				return false
			}
		})
		if e.Pid != s.pid || e.Code() != s.want {
			t.Errorf("sh -c %q: exit %+v code %d, want pid %d code %d", tests[i].script, e, e.Code(), s.pid, s.want)
		}
	}
	drain(t, r)
}

func TestReapOrphan(t *testing.T) {
	if IsPID1() {
		t.Skip("running as PID 1: orphans come back anyway")
	}
	if err := SetSubreaper(); err != nil {
		t.Fatalf("SetSubreaper: %v", err)
	}
	var flag int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&flag)), 0, 0, 0); err != nil {
		t.Fatalf("PR_GET_CHILD_SUBREAPER: %v", err)
	}
	if flag != 1 {
		t.Fatalf("after SetSubreaper the subreaper flag is %d", flag)
	}

	r := New()
	drain(t, r)
	pid, ch := startProcess(t, r, "/bin/sh", "-c", "(sleep 0.2 &) ; exit 0")
	var childExit *Exit
	orphans := reapUntil(t, r, func(orphans []Exit, none bool) bool {
		select {
		case e := <-ch:
			childExit = &e
		default:
		}
		return childExit != nil && none
	})
	if childExit.Pid != pid || childExit.Code() != 0 {
		t.Errorf("child exit %+v, want pid %d code 0", childExit, pid)
	}
	if len(orphans) != 1 {
		t.Fatalf("orphans %v, want the one sleep", orphans)
	}
	o := orphans[0]
	if o.Pid == pid || o.Pid <= 0 || o.Code() != 0 {
		t.Errorf("orphan %+v, want a pid other than %d and code 0", o, pid)
	}
	if reaped, orph := r.Counts(); reaped != 2 || orph != 1 {
		t.Errorf("Counts() = %d, %d; want 2, 1", reaped, orph)
	}
}

func TestCountsStartAtZero(t *testing.T) {
	if reaped, orphans := New().Counts(); reaped != 0 || orphans != 0 {
		t.Errorf("New().Counts() = %d, %d", reaped, orphans)
	}
}

func TestIsPID1(t *testing.T) {
	if got, want := IsPID1(), os.Getpid() == 1; got != want {
		t.Errorf("IsPID1() = %v, want %v", got, want)
	}
}

// Command probe is the child that gaffer's black-box tests run: it reports what it receives and
// how it was started.
//
//	probe signals [keep]   print "ready", then "got NAME" for every signal received; exit 0 on stdin
//	                       EOF, unless keep is given
//	probe blockexec CMD... block USR1, USR2 and TERM, ignore INT and QUIT, then exec CMD
//	probe sleep            sleep until killed
//	probe listen ADDR      accept TCP connections on ADDR after 200ms, until killed
//	probe http ADDR        answer HTTP requests on ADDR with 200 after 200ms, until killed
//	probe lines N ID       write N lines "ID SEQ" to stdout as fast as possible
//	probe leftover term|ignore CODE
//	                       start a leftover process and wait until it reports over a pipe that its
//	                       SIGTERM disposition is in place; print "leftover=PID", then exit CODE at
//	                       stdin EOF. The leftover (not waited for, so it outlives the probe) either
//	                       prints "leftover got TERM" and exits 0 on SIGTERM (term), or ignores
//	                       SIGTERM (ignore); it sleeps until then
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"gaffer/signals"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe signals|blockexec|sleep|listen|http|lines|leftover")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "signals":
		reportSignals()
	case "blockexec":
		blockExec(os.Args[2:])
	case "sleep":
		time.Sleep(time.Hour)
	case "listen", "http":
		serve(os.Args[1], os.Args[2])
	case "lines":
		writeLines(os.Args[2], os.Args[3])
	case "leftover":
		leftover(os.Args[2], os.Args[3])
	case "leftover-child":
		leftoverChild(os.Args[2])
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

func reportSignals() {
	ch := make(chan os.Signal, 256)
	signal.Notify(ch, signals.Handled()...)
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	eof := make(chan struct{})
	keep := len(os.Args) > 2 && os.Args[2] == "keep"
	go func() {
		if keep {
			return
		}
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	for {
		select {
		case s := <-ch:
			sig := s.(syscall.Signal)
			if sig == unix.SIGCHLD {
				continue
			}
			fmt.Fprintf(out, "got %s\n", signals.Name(sig))
			out.Flush()
		case <-eof:
			os.Exit(0)
		}
	}
}

// serve listens late on purpose, so that a readiness probe has to wait for it.
func serve(mode, addr string) {
	time.Sleep(200 * time.Millisecond)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	fmt.Println("listening")
	if mode == "http" {
		err = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	} else {
		for {
			c, err := l.Accept()
			if err != nil {
				break
			}
			c.Close()
		}
	}
	fmt.Fprintln(os.Stderr, "probe:", err)
	os.Exit(1)
}

func writeLines(n, id string) {
	count, _ := strconv.Atoi(n)
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	for i := 0; i < count; i++ {
		fmt.Fprintf(w, "%s %d\n", id, i)
	}
	w.Flush()
}

func blockExec(argv []string) {
	runtime.LockOSThread()
	signal.Ignore(unix.SIGINT, unix.SIGQUIT)
	var set unix.Sigset_t
	for _, s := range []syscall.Signal{unix.SIGUSR1, unix.SIGUSR2, unix.SIGTERM} {
		set.Val[(s-1)/64] |= 1 << ((uint(s) - 1) % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	err := syscall.Exec(argv[0], argv, os.Environ())
	fmt.Fprintln(os.Stderr, "probe: exec:", err)
	os.Exit(127)
}

// leftover starts the leftover and waits for its report, so that a test signals it only once its
// disposition is set: a shell's `cmd &` has a window between fork and exec in which dash swallows
// a SIGTERM, and a subshell's `trap` may not have run yet.
func leftover(mode, code string) {
	exit, err := strconv.Atoi(code)
	if err != nil || (mode != "term" && mode != "ignore") {
		fmt.Fprintln(os.Stderr, "usage: probe leftover term|ignore CODE")
		os.Exit(2)
	}
	r, w, err := os.Pipe()
	if err != nil {
		fail(err)
	}
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	cmd := exec.Command(self, "leftover-child", mode)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	w.Close()
	// The leftover closes its end after "ready"; EOF without it means it died.
	ready, _ := io.ReadAll(r)
	if string(ready) != "ready\n" {
		fail(fmt.Errorf("leftover pid %d did not report ready: %q", cmd.Process.Pid, ready))
	}
	fmt.Printf("leftover=%d\n", cmd.Process.Pid)
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(exit)
}

func leftoverChild(mode string) {
	ch := make(chan os.Signal, 1)
	if mode == "term" {
		signal.Notify(ch, unix.SIGTERM)
	} else {
		signal.Ignore(unix.SIGTERM)
	}
	ready := os.NewFile(3, "ready")
	if _, err := ready.WriteString("ready\n"); err != nil {
		fail(err)
	}
	ready.Close()
	select {
	case <-ch:
		fmt.Println("leftover got TERM")
		os.Exit(0)
	case <-time.After(time.Hour):
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "probe:", err)
	os.Exit(1)
}

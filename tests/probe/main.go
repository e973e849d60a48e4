// Command probe is the child that gaffer's black-box tests run: it reports what it receives and
// how it was started.
//
//	probe signals [keep]   print "ready", then "got NAME" for every signal received; exit 0 on stdin
//	                       EOF, unless keep is given
//	probe blockexec CMD... block USR1, USR2 and TERM, ignore INT and QUIT, then exec CMD
//	probe sleep            sleep until killed
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"gaffer/signals"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe signals|blockexec|sleep")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "signals":
		reportSignals()
	case "blockexec":
		blockExec(os.Args[2:])
	case "sleep":
		time.Sleep(time.Hour)
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

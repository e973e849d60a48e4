// Command gaffer is an init for containers: PID 1 that reaps zombies, forwards signals and stops the
// whole tree (gaffer -- CMD), and an exec wrapper that switches identity (gaffer exec).
package main

import (
	"os"
	"os/signal"

	"gaffer/cli"
	"gaffer/signals"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var sigs cli.Signals
	if cli.RunsInit(os.Args) {
		// First thing, before anything can go wrong: a Go PID 1 that receives a signal it has not
		// asked for exits with status 2. The buffer is large because Notify drops when it is full.
		ch := make(chan os.Signal, 1024)
		signal.Notify(ch, signals.Early()...)
		// One Notify per late signal: Notify holds os/signal's lock for all the signals it is given,
		// about 30us each, and every delivery waits for that lock; in one call the 44 late signals
		// held back the child's SIGCHLD (and a SIGTERM) for over a millisecond.
		sigs = cli.Signals{C: ch, NotifyLate: func() {
			for _, s := range signals.Late() {
				signal.Notify(ch, s)
			}
		}}
	}
	os.Exit(cli.Run(os.Args, version, sigs, os.Stderr))
}

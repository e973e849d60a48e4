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
	"os"
	"os/signal"

	"gaffer/bench/internal/mini"
	"gaffer/signals"
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
	os.Exit(mini.Init("mingo", sigs, args))
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
	return mini.Exec("mingo", spec, args)
}

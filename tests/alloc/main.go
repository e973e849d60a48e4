// Command alloc is the memory hog of gaffer's OOM tests: busybox has no program that keeps
// memory, and dd's buffer is freed as it goes.
//
//	alloc MIB [FILE]   wait until FILE exists (when given), print "allocating", then map MIB MiB
//	                   in 1 MiB steps, writing every page so that it is resident; print
//	                   "allocated MIB" and sleep until killed
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: alloc MIB [FILE]")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "alloc: bad size %q\n", os.Args[1])
		os.Exit(2)
	}
	if len(os.Args) > 2 {
		for {
			if _, err := os.Stat(os.Args[2]); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	fmt.Println("allocating")
	page := os.Getpagesize()
	var keep [][]byte
	for i := 0; i < n; i++ {
		b, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			fmt.Fprintf(os.Stderr, "alloc: mmap after %d MiB: %v\n", i, err)
			os.Exit(1)
		}
		for j := 0; j < len(b); j += page {
			b[j] = 1
		}
		keep = append(keep, b)
	}
	fmt.Printf("allocated %d\n", len(keep))
	for {
		time.Sleep(time.Hour)
	}
}

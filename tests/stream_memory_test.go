package tests

// Black-box tests of the bounds of API streams (issue 7): followers that do not read cost gaffer a
// bounded amount of memory, which it gives back when they go, and a follower that falls behind is
// told in-band how many lines it lost.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bigWriter writes lines of 64 KiB (65535 zeros and a newline, the relay's longest line) as fast
// as gaffer takes them.
const bigWriter = `
[process.web]
cmd = ["sh", "-c", "exec yes \"$(printf '%065535d' 0)\""]
`

// Bounds the test holds gaffer to. The API promises at most 256 KiB queued per stream (8 MiB in
// all) plus the line being written; the rest is slack for the Go heap's growth and the relay.
const (
	followerSlack = 64 << 20 // RssAnon over the baseline while four followers do not read
	afterSlack    = 8 << 20  // RssAnon over twice the baseline once they are gone
)

// bigOutput is a `gaffer up` (PID 1 of a new PID namespace) running bigWriter, whose stdout the
// test drains and counts.
type bigOutput struct {
	*apiGaffer
	written atomic.Int64 // bytes of gaffer's stdout so far
}

func startBigOutput(t *testing.T) *bigOutput {
	t.Helper()
	toml := "[settings]\nsocket = \"{dir}/g.sock\"\n" + bigWriter
	g, dir := startUp(t, true, map[string]string{"gaffer.toml": toml})
	b := &bigOutput{apiGaffer: &apiGaffer{gafferRun: g, dir: dir, sock: filepath.Join(dir, "g.sock")}}
	stopAtEnd(t, g)
	go func() {
		for l := range g.lines { // ends when gaffer's stdout closes
			b.written.Add(int64(len(l) + 1))
		}
	}()
	b.waitAPI()
	return b
}

// waitWritten waits until gaffer has written n more bytes of output, calling sample as it polls.
func (b *bigOutput) waitWritten(n int64, sample func()) {
	b.t.Helper()
	until := b.written.Load() + n
	testutil.WaitFor(b.t, 120*time.Second, fmt.Sprintf("%d MiB more of output", n>>20), func() bool {
		if sample != nil {
			sample()
		}
		return b.written.Load() >= until
	})
}

// rssAnon returns the anonymous resident memory of pid in bytes (RssAnon of /proc/PID/status):
// the heap and stacks, without the binary's mapped pages.
func rssAnon(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("RssAnon in %q: %v", l, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no RssAnon in /proc/%d/status", pid)
	return 0
}

// openFollower sends GET /v1/processes/web/logs?follow=1 on a raw connection and reads the
// response head, which gaffer writes once the follower is subscribed; the body is left to the
// caller.
func openFollower(t *testing.T, sock string) (net.Conn, *http.Response) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(120 * time.Second))
	if _, err := io.WriteString(c, "GET /v1/processes/web/logs?follow=1&tail=0 HTTP/1.1\r\nHost: gaffer\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("follower: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("follower: status %d", resp.StatusCode)
	}
	return c, resp
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Four followers that never read, on a process writing 64 KiB lines: before the bound gaffer's
// RSS went from 15 MB to 553 MB and stayed at 274 MB after they closed.
func TestStreamFollowersThatDoNotReadCostBoundedMemory(t *testing.T) {
	b := startBigOutput(t)
	pid := b.cmd.Process.Pid
	// The baseline: the most RssAnon while 32 MiB of output flow with nobody following.
	b.waitWritten(32<<20, nil)
	var baseline int64
	b.waitWritten(32<<20, func() { baseline = max(baseline, rssAnon(t, pid)) })

	type selfInfo struct {
		Goroutines int `json:"goroutines"`
		OpenFDs    int `json:"open_fds"`
	}
	var before selfInfo
	b.get("/v1/info", &before)

	var conns []net.Conn
	for range 4 {
		c, _ := openFollower(t, b.sock)
		conns = append(conns, c)
	}
	var during int64
	b.waitWritten(200<<20, func() { during = max(during, rssAnon(t, pid)) })
	t.Logf("RssAnon: baseline %s, with four followers that do not read %s", mib(baseline), mib(during))
	if during > baseline+followerSlack {
		t.Errorf("RssAnon reached %s with four followers that do not read: over the baseline %s + %s",
			mib(during), mib(baseline), mib(followerSlack))
	}

	for _, c := range conns {
		c.Close()
	}
	start := time.Now()
	var after int64
	testutil.WaitFor(t, 60*time.Second, "RssAnon back near the baseline", func() bool {
		after = rssAnon(t, pid)
		return after <= 2*baseline+afterSlack
	})
	t.Logf("RssAnon after the followers closed: %s within %v", mib(after), time.Since(start).Round(time.Millisecond))
	// Nothing of theirs is left: goroutines (handler, watcher, feed) and sockets.
	var now selfInfo
	testutil.WaitFor(t, 30*time.Second, "gaffer's goroutines and descriptors back to their count before the followers", func() bool {
		b.get("/v1/info", &now)
		return now.Goroutines <= before.Goroutines && now.OpenFDs <= before.OpenFDs
	})
}

// A follower that stops reading while the process writes loses lines, and is told how many
// before the next line it gets.
func TestStreamSlowFollowerIsToldOfDroppedLines(t *testing.T) {
	b := startBigOutput(t)
	_, resp := openFollower(t, b.sock)
	// Not reading while 32 MiB (512 lines) go by: far more than a stream holds.
	b.waitWritten(32<<20, nil)
	br := bufio.NewReaderSize(resp.Body, 256<<10)
	for i := 0; i < 3000; i++ {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("after %d lines: %v", i, err)
		}
		if !bytes.HasPrefix(line, []byte(`{"dropped":`)) {
			continue
		}
		var d struct {
			Dropped int `json:"dropped"`
		}
		if err := json.Unmarshal(line, &d); err != nil || d.Dropped <= 0 {
			t.Fatalf("marker %q: %v", line, err)
		}
		next, err := br.ReadBytes('\n')
		var l struct{ Name, Stream, Line string }
		if err != nil || json.Unmarshal(next, &l) != nil || l.Name != "web" || len(l.Line) != 65535 {
			t.Fatalf("after the marker %s: %.200q %v", line, next, err)
		}
		t.Logf("after %d lines: %s", i, bytes.TrimSpace(line))
		return
	}
	t.Fatal(`3000 lines and no {"dropped":N}: the follower's lines were all kept`)
}

// `gaffer logs -f` prints a marker line where it lost lines: here its stdout is a pipe nobody
// reads for a while, so it stops reading the socket.
func TestStreamClientPrintsDroppedLines(t *testing.T) {
	b := startBigOutput(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(gafferBin, "logs", "--socket", b.sock, "-f", "-n", "0", "web")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	b.waitWritten(32<<20, nil)
	r.SetReadDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReaderSize(r, 256<<10)
	for i := 0; i < 3000; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d lines: %v", i, err)
		}
		if strings.HasPrefix(line, "[gaffer: ") {
			if !strings.HasSuffix(line, " lines dropped: this client fell behind]\n") {
				t.Fatalf("marker %q", line)
			}
			return
		}
		if len(line) != 65536 {
			t.Fatalf("line %d: %.100q (%d bytes)", i, line, len(line))
		}
	}
	t.Fatal("3000 lines and no marker line")
}

package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"gaffer/internal/testutil"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMalformedRequests(t *testing.T) {
	s := startServer(t, newFakeBackend(2), func(o *Options) { o.MaxBody = 1024 })
	big := strings.Repeat("a", 70<<10)
	tests := []struct {
		name, raw string
		code      int
	}{
		{"garbage", "\x00\x01\x02 hello\r\n\r\n", 400},
		{"no version", "GET /v1/info\r\n\r\n", 400},
		{"double space", "GET  /v1/info HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"trailing junk", "GET /v1/info HTTP/1.1 x\r\nHost: x\r\n\r\n", 400},
		{"lower-case version", "GET /v1/info http/1.1\r\nHost: x\r\n\r\n", 400},
		{"HTTP/2.0", "GET /v1/info HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"HTTP/0.9", "GET /v1/info HTTP/0.9\r\n\r\n", 505},
		{"bad method", "G(T /v1/info HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"control in target", "GET /v1/\x7finfo HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"bare CR", "GET /v1/info HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 400},
		{"huge header", "GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n", 431},
		{"huge request line", "GET /" + big + " HTTP/1.1\r\nHost: x\r\n\r\n", 431},
		{"many headers", "GET /v1/info HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X: y\r\n", 200) + "\r\n", 431},
		{"no colon", "GET /v1/info HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", 400},
		{"space before colon", "GET /v1/info HTTP/1.1\r\nHost : x\r\n\r\n", 400},
		{"obs-fold", "GET /v1/info HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400},
		{"control in value", "GET /v1/info HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400},
		{"missing Host", "GET /v1/info HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET /v1/info HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"bad content-length", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400},
		{"negative content-length", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"plus content-length", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx", 400},
		{"empty content-length", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400},
		{"duplicate content-length", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400},
		{"content-length list", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nxx", 400},
		{"huge content-length", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
		{"TE and CL", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"gzip TE", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"TE in 1.0", "POST /v1/processes/web/stdin HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"bad chunk size", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
		{"chunk longer than its size", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n", 400},
		{"chunk size overflow", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", 413},
		{"truncated body", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", 400},
		{"truncated head", "GET /v1/info HTTP/1.1\r\nHost: x\r\n", 400},
		{"expectation", "GET /v1/info HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417},
		{"too many blank lines", "\r\n\r\n\r\n\r\n\r\nGET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	}
	for _, tt := range tests {
		out := roundTrip(t, s.Path(), tt.raw)
		if status(out) != tt.code {
			t.Errorf("%s: got %.200q, want %d", tt.name, out, tt.code)
			continue
		}
		if !strings.Contains(out, "\r\nConnection: close\r\n") || !strings.Contains(out, `{"error":`) {
			t.Errorf("%s: an error that ends the connection must say so, with a JSON body: %q", tt.name, out)
		}
	}
}

func TestLenientButValid(t *testing.T) {
	s := startServer(t, newFakeBackend(2), nil)
	for _, raw := range []string{
		"GET /v1/info HTTP/1.1\nHost: x\nConnection: close\n\n",                      // bare LF line ends
		"\r\nGET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",          // a leading empty line
		"GET http://gaffer/v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", // absolute form
		"GET /v1/info HTTP/1.0\r\n\r\n",                                              // HTTP/1.0 needs no Host
		"GET /v1/info HTTP/1.1\r\nhOsT:x\r\nCONNECTION: Close\r\n\r\n",               // case, no OWS
		"GET /v1/info HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"GET /v1/info HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\nConnection: close\r\n\r\n{}",
	} {
		out := roundTrip(t, s.Path(), raw)
		if status(out) != 200 || !strings.Contains(out, `"version":"test"`) {
			t.Errorf("%q: got %q", raw, out)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	s := startServer(t, newFakeBackend(2), nil)
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	// One at a time, then two pipelined in one write, an error that keeps the connection, and a
	// POST with a body.
	io.WriteString(c, "GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := readRawResponse(t, br); r.code != 200 || r.header["connection"] != "" {
		t.Fatalf("first: %+v", r)
	}
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	for _, want := range []int{200, 404, 200} {
		if r := readRawResponse(t, br); r.code != want || r.header["connection"] != "" {
			t.Fatalf("pipelined: %+v, want %d", r, want)
		}
	}
	io.WriteString(c, "GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if r := readRawResponse(t, br); r.code != 200 || r.header["connection"] != "close" {
		t.Fatalf("close: %+v", r)
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close: %v %v, want EOF", n, err)
	}
}

func TestHTTP10Closes(t *testing.T) {
	s := startServer(t, newFakeBackend(2), nil)
	for _, raw := range []string{"GET /v1/info HTTP/1.0\r\n\r\n", "GET /v1/info HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"} {
		out := roundTrip(t, s.Path(), raw)
		if status(out) != 200 || !strings.Contains(out, "Connection: close") {
			t.Errorf("%q: %q", raw, out)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	s := startServer(t, newFakeBackend(2), func(o *Options) { o.IdleTimeout = 100 * time.Millisecond })
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
	readRawResponse(t, br)
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed after %v", d)
	}
}

func TestSlowHeader(t *testing.T) {
	s := startServer(t, newFakeBackend(2), func(o *Options) { o.HeaderTimeout = 200 * time.Millisecond })
	// Before the dial: the server's clock starts at its accept, which may come before Dial returns.
	start := time.Now()
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /v1/in")
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if status(string(out)) != 408 {
		t.Errorf("got %q, want 408", out)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Errorf("timed out after %v, want about 200ms", d)
	}
	// A connection that sends nothing is closed without an answer.
	c2, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	if out, err := io.ReadAll(c2); err != nil || len(out) != 0 {
		t.Errorf("silent connection: %q %v", out, err)
	}
}

func TestSlowBody(t *testing.T) {
	// The body has its own, longer timeout; the server's Close still ends the wait.
	s := startServer(t, newFakeBackend(2), nil)
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
	testutil.WaitFor(t, 5*time.Second, "the request to be read", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 1
	})
	go s.Close()
	out, _ := io.ReadAll(c)
	if len(out) > 0 && status(string(out)) != 400 {
		t.Errorf("got %q", out)
	}
}

func TestBodyLimits(t *testing.T) {
	b := newFakeBackend(2)
	s := startServer(t, b, func(o *Options) { o.MaxBody = 16 })
	chunked := func(parts ...string) string {
		var sb strings.Builder
		for _, p := range parts {
			fmt.Fprintf(&sb, "%x\r\n%s\r\n", len(p), p)
		}
		return sb.String() + "0\r\n\r\n"
	}
	tests := []struct {
		name, raw string
		code      int
		stdin     string
	}{
		{"at the limit", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n0123456789abcdef", 200, "0123456789abcdef"},
		{"over the limit", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n0123456789abcdefg", 413, ""},
		{"chunked", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked("0123", "456789abcdef"), 200, "0123456789abcdef"},
		{"chunked with extension and trailer", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", 200, "abc"},
		{"chunked over the limit", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked("0123456789", "abcdefg"), 413, ""},
		{"endless chunk extensions", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 80), 413, ""},
		{"100-continue over the limit", "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 17\r\n\r\n", 413, ""},
		{"body on an unknown route", "POST /v1/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 404, ""},
	}
	for _, tt := range tests {
		b.mu.Lock()
		b.stdin = nil
		b.mu.Unlock()
		out := roundTrip(t, s.Path(), tt.raw+"GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if status(out) != tt.code {
			t.Errorf("%s: got %q, want %d", tt.name, out, tt.code)
		}
		b.mu.Lock()
		got := b.stdin
		b.mu.Unlock()
		if tt.stdin != "" && (len(got) != 1 || string(got[0]) != tt.stdin) {
			t.Errorf("%s: stdin got %q, want %q", tt.name, got, tt.stdin)
		}
		if tt.stdin == "" && len(got) != 0 {
			t.Errorf("%s: stdin written: %q", tt.name, got)
		}
		// Kept alive after a good body, closed after a bad one.
		if n := strings.Count(out, "HTTP/1.1 "); (tt.code == 200 && n != 2) || (tt.code != 200 && tt.code != 404 && n != 1) {
			t.Errorf("%s: %d responses: %q", tt.name, n, out)
		}
	}
}

func TestExpectContinue(t *testing.T) {
	b := newFakeBackend(2)
	s := startServer(t, b, nil)
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q %v", line, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("after 100: %q", blank)
	}
	io.WriteString(c, "hi")
	if r := readRawResponse(t, br); r.code != 200 {
		t.Fatalf("%+v", r)
	}
}

func TestMaxConns(t *testing.T) {
	s := startServer(t, newFakeBackend(2), func(o *Options) { o.MaxConns = 1 })
	c1, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	testutil.WaitFor(t, 5*time.Second, "the first connection", func() bool { return servedConns(s) == 1 })
	out := roundTrip(t, s.Path(), "GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
	if status(out) != 503 || !strings.Contains(out, "\r\nConnection: close\r\n") || !strings.HasSuffix(out, "{\"error\":\"too many connections\"}\n") {
		t.Errorf("got %q", out)
	}
	c1.Close()
	testutil.WaitFor(t, 5*time.Second, "the first connection to end", func() bool { return servedConns(s) == 0 })
	if out := roundTrip(t, s.Path(), "GET /v1/info HTTP/1.0\r\n\r\n"); status(out) != 200 {
		t.Errorf("got %q", out)
	}
}

// servedConns counts the connections s is serving (refused ones excluded).
func servedConns(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// TestRefuseHoldsNoSlot: a refused connection gets its whole answer at once, needs nothing from
// the client, holds no slot, and stays open for the client's request; past maxRefused waiting,
// the oldest is closed early, and a new one still gets its answer.
func TestRefuseHoldsNoSlot(t *testing.T) {
	s := startServer(t, newFakeBackend(2), func(o *Options) { o.MaxConns = 1 })
	pair := func() (*conn, net.Conn) {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		var cs [2]net.Conn
		for i, fd := range fds {
			f := os.NewFile(uintptr(fd), "pair")
			if cs[i], err = net.FileConn(f); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		t.Cleanup(func() { cs[0].Close(); cs[1].Close() })
		sc := &conn{Conn: cs[0]}
		sc.raw, _ = cs[0].(*net.UnixConn).SyscallConn()
		return sc, cs[1]
	}
	const want = "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 25\r\n\r\n{\"error\":\"not you, uid\"}\n"
	check := func(what string, peer net.Conn, write bool) {
		t.Helper()
		peer.SetDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(peer) // ends at the server's SHUT_WR, before its close
		if err != nil || string(out) != want {
			t.Errorf("%s: %q %v, want %q", what, out, err, want)
		}
		if write {
			if _, err := io.WriteString(peer, "GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Errorf("%s: the client's request after the answer: %v", what, err)
			}
		}
	}
	sc, peer := pair()
	s.refuse(sc, 403, "not you, uid")
	if servedConns(s) != 0 {
		t.Error("a refused connection holds a slot")
	}
	check("refused", peer, true)
	// More than maxRefused at once: every one gets its answer.
	var peers []net.Conn
	for range maxRefused + 10 {
		sc, peer := pair()
		s.refuse(sc, 403, "not you, uid")
		peers = append(peers, peer)
	}
	for i, p := range peers {
		check(fmt.Sprintf("refused %d", i), p, false)
	}
	// The slot of MaxConns = 1 is still free.
	if out := roundTrip(t, s.Path(), "GET /v1/info HTTP/1.0\r\n\r\n"); status(out) != 200 {
		t.Errorf("after refusals: %q", out)
	}
	if len(s.refused) > maxRefused {
		t.Errorf("%d refused connections waiting", len(s.refused))
	}
}

// TestAdmit: root and gaffer's uid may use every slot; other allowed uids ReservedConns fewer, and
// MaxConnsPerUID each.
func TestAdmit(t *testing.T) {
	s := newServer(Options{MaxConns: 40, AllowUIDs: []int{1001, 1002}})
	defer s.cancel()
	s.selfUID = 1000
	if s.opts.MaxConnsPerUID != 10 || s.reserved != 8 {
		t.Fatalf("per uid %d, reserved %d; want 10 and 8", s.opts.MaxConnsPerUID, s.reserved)
	}
	for _, tt := range []struct {
		served, others int
		byUID          map[int]int
		uid            int
		want           string
	}{
		{0, 0, nil, 1001, ""},
		{9, 9, map[int]int{1001: 9}, 1001, ""},
		{10, 10, map[int]int{1001: 10}, 1001, "too many connections from uid 1001 (at most 10)"},
		{10, 10, map[int]int{1001: 10}, 1002, ""},
		{31, 31, map[int]int{1001: 10, 1002: 10}, 1003, ""},
		{32, 32, map[int]int{1001: 10, 1002: 10}, 1003, "too many connections"},
		{32, 32, map[int]int{1001: 10, 1002: 10}, 1001, "too many connections from uid 1001 (at most 10)"},
		{32, 32, map[int]int{1001: 10, 1002: 10}, 0, ""},
		{39, 32, map[int]int{1001: 10, 1002: 10}, 1000, ""},
		{40, 32, map[int]int{1001: 10, 1002: 10}, 0, "too many connections"},
		// Root's connections do not eat into the others' share, but into the total.
		{38, 30, map[int]int{1001: 10, 1002: 10}, 1003, ""},
		{40, 30, map[int]int{1001: 10, 1002: 10}, 1003, "too many connections"},
	} {
		s.served, s.others, s.byUID = tt.served, tt.others, tt.byUID
		if s.byUID == nil {
			s.byUID = map[int]int{}
		}
		if got := s.admit(tt.uid); got != tt.want {
			t.Errorf("served %d (others %d, %v), uid %d: %q, want %q", tt.served, tt.others, tt.byUID, tt.uid, got, tt.want)
		}
	}
	if s := newServer(Options{MaxConns: 1}); s.reserved != 0 || s.opts.MaxConnsPerUID != 1 {
		t.Errorf("MaxConns 1: reserved %d, per uid %d", s.reserved, s.opts.MaxConnsPerUID)
	}
}

func TestAllowed(t *testing.T) {
	for _, tt := range []struct {
		uid, self int
		allow     []int
		want      bool
	}{
		{0, 1000, nil, true},
		{1000, 1000, nil, true},
		{1001, 1000, nil, false},
		{1001, 1000, []int{5, 1001}, true},
		{65534, 0, nil, false},
		{65534, 0, []int{65534}, true},
	} {
		if got := allowed(tt.uid, tt.self, tt.allow); got != tt.want {
			t.Errorf("allowed(%d, %d, %v) = %v", tt.uid, tt.self, tt.allow, got)
		}
	}
}

func TestListenStaleLiveAndNotSocket(t *testing.T) {
	path := socketPath(t)
	// A stale socket: bound, never listened on or closed without unlinking.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	opts := Options{Path: path, Group: -1, Backend: newFakeBackend(2)}
	s, err := Listen(opts)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	// A live one.
	if _, err := Listen(opts); err == nil || err.Error() != "another gaffer is listening on "+path {
		t.Errorf("live socket: %v", err)
	}
	s.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed on Close: %v", err)
	}
	// Not a socket.
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(opts); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "x" {
		t.Errorf("the regular file was touched: %q %v", b, err)
	}
}

func TestListenModeGroupAndDir(t *testing.T) {
	base := socketPath(t)
	path := filepath.Join(filepath.Dir(base), "a", "b", "s.sock")
	s, err := Listen(Options{Path: path, Group: -1, Backend: newFakeBackend(2)})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want socket 0600", fi.Mode())
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o755 {
		t.Errorf("parent dir: %v %v", di.Mode(), err)
	}
	s.Close()

	gid := 65534
	if os.Getuid() != 0 {
		gid = os.Getgid()
	}
	s, err = Listen(Options{Path: path, Mode: 0o660, Group: gid, Backend: newFakeBackend(2)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err = os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || int(st.Gid) != gid {
		t.Errorf("mode %v gid %d, want 0660 and %d", fi.Mode(), st.Gid, gid)
	}
}

func TestCloseKeepsAReplacedSocket(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(Options{Path: path, Group: -1, Backend: newFakeBackend(2)})
	if err != nil {
		t.Fatal(err)
	}
	// Someone removed our socket and put another in its place: Close must leave it.
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the other socket was removed: %v", err)
	}
}

func TestServeEndsWithContext(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(Options{Path: path, Group: -1, Backend: newFakeBackend(2)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	if code, _, err := (&Client{Path: path}).Do(context.Background(), "GET", "/v1/info", nil); err != nil || code != 200 {
		t.Fatalf("%d %v", code, err)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed: %v", err)
	}
}

func TestSetBackend(t *testing.T) {
	path := socketPath(t)
	s, err := Listen(Options{Path: path, Group: -1})
	if err != nil {
		t.Fatal(err)
	}
	s.SetBackend(newFakeBackend(2))
	go s.Serve(context.Background())
	defer s.Close()
	if code, _, err := (&Client{Path: path}).Do(context.Background(), "GET", "/v1/info", nil); err != nil || code != 200 {
		t.Fatalf("%d %v", code, err)
	}
	s2, err := Listen(Options{Path: socketPath(t), Group: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Serve(context.Background()); err == nil {
		t.Error("Serve without a Backend succeeded")
	}
}

func TestListenErrors(t *testing.T) {
	if _, err := Listen(Options{Group: -1}); err == nil {
		t.Error("empty path accepted")
	}
	long := "/tmp/" + strings.Repeat("x", 200)
	if _, err := Listen(Options{Path: long, Group: -1}); err == nil || strings.Count(err.Error(), ":") != 1 {
		t.Errorf("long path: %v", err)
	}
}

func TestCloseIsQuick(t *testing.T) {
	b := newFakeBackend(2)
	path := socketPath(t)
	s, err := Listen(Options{Path: path, Group: -1, Backend: b, Stats: fakeStats})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background()) }()
	// An idle kept-alive connection, one half-sent request, and a stream.
	idle, _ := net.Dial("unix", path)
	defer idle.Close()
	io.WriteString(idle, "GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
	readRawResponse(t, bufio.NewReader(idle))
	half, _ := net.Dial("unix", path)
	defer half.Close()
	io.WriteString(half, "GET /v1/inf")
	watch, _ := net.Dial("unix", path)
	defer watch.Close()
	io.WriteString(watch, "GET /v1/stats?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n")
	testutil.WaitFor(t, 5*time.Second, "three connections", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 3
	})
	start := time.Now()
	s.Close()
	if d := time.Since(start); d >= closeGrace {
		t.Errorf("Close took %v", d)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	for _, c := range []net.Conn{idle, half, watch} {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		// Ended either way: EOF, or a reset when the server closed with our bytes unread.
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("after Close: %v", err)
		}
	}
}

func TestConcurrentStdinWrites(t *testing.T) {
	b := newFakeBackend(2)
	s := startServer(t, b, nil)
	c := Client{Path: s.Path(), Timeout: 5 * time.Second}
	const writers = 8
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			body := []byte(strings.Repeat(fmt.Sprintf("writer %d\n", i), 5000))
			code, _, err := c.Do(context.Background(), "POST", "/v1/processes/web/stdin", body)
			if err == nil && code != 200 {
				err = fmt.Errorf("status %d", code)
			}
			errs <- err
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	stdin, _ := b.writes()
	if len(stdin) != writers {
		t.Fatalf("%d writes, want %d", len(stdin), writers)
	}
	for _, w := range stdin {
		first, _, _ := strings.Cut(string(w), "\n")
		if string(w) != strings.Repeat(first+"\n", 5000) {
			t.Errorf("a write mixes writers: %.40q...", w)
		}
	}
}

package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gaffer/http1"
)

// fakeConn is a connection whose client sent in and then closed its end; what the server writes
// is kept in out.
type fakeConn struct {
	mu  sync.Mutex
	in  *bytes.Reader
	n   int // bytes the server read
	out bytes.Buffer
}

func (c *fakeConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.in.Read(p)
	c.n += n
	return n, err
}

func (c *fakeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.UnixAddr{Net: "unix"} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Net: "unix"} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

const (
	fuzzMaxBody   = 64
	fuzzMaxHeader = 1024
)

func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/processes/web.2 HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n",
		"GET /v1/processes/web/logs?stream=out&tail=3&follow=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/stats?watch=1&interval=100ms HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/processes/web/stats HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/events?follow=1 HTTP/1.0\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/processes/web/signal HTTP/1.1\r\nHost: x\r\nContent-Length: 29\r\n\r\n{\"signal\":\"HUP\",\"group\":true}",
		"POST /v1/processes/web/scale HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\n\r\n{\"numprocesses\": 3}",
		"POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n",
		"POST /v1/processes/web/streams/audit?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nhi",
		"POST /v1/processes/web/restart?wait=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"POST /v1/shutdown HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT http://x/v1/processes/web%2e2/stop HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/info HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		"\r\nGET / HTTP/9.9\n\n",
	} {
		f.Add([]byte(seed))
	}
	b := newFakeBackend(2)
	s := newServer(Options{Path: "/fuzz.sock", Group: -1, Backend: b, Stats: fakeStats, MaxBody: fuzzMaxBody, MaxHeader: fuzzMaxHeader})
	f.Fuzz(func(t *testing.T, data []byte) {
		// The whole server on a connection that sends data and closes.
		fc := &fakeConn{in: bytes.NewReader(data)}
		s.serveConn(&conn{Conn: fc}, len(data)%7 != 0)
		b.mu.Lock()
		for _, w := range b.stdin {
			if len(w) > fuzzMaxBody {
				t.Fatalf("the backend got %d bytes of stdin, over the limit", len(w))
			}
		}
		b.stdin, b.streams, b.calls = nil, nil, nil
		b.mu.Unlock()
		checkResponses(t, fc.out.Bytes())
		checkWithNetHTTP(t, fc.out.Bytes())
	})
}

// checkWithNetHTTP reads the responses with net/http's parser, as a second opinion, and checks
// that every error has a JSON body {"error": "..."}.
func checkWithNetHTTP(t *testing.T, out []byte) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(out))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("net/http cannot read the response: %v in %q", err, out)
		}
		body, err := io.ReadAll(resp.Body)
		chunked := len(resp.TransferEncoding) > 0
		if err != nil && !(chunked && errors.Is(err, io.ErrUnexpectedEOF)) {
			t.Fatalf("net/http cannot read the body: %v in %q", err, out)
		}
		if resp.StatusCode >= 400 {
			var eb map[string]string
			if resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &eb) != nil || len(eb) != 1 || eb["error"] == "" {
				t.Fatalf("error response without {\"error\": ...}: %q", out)
			}
		}
		if chunked || resp.Close && resp.ContentLength < 0 {
			return
		}
	}
}

// checkResponses asserts that out is a sequence of well-formed responses.
func checkResponses(t *testing.T, out []byte) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(out))
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return
		}
		resp, err := http1.ReadResponse(br, DefaultMaxHeader)
		if err != nil {
			t.Fatalf("malformed response: %v in %q", err, out)
		}
		if http1.StatusText(resp.Code) == "Status "+strconv.Itoa(resp.Code) {
			t.Fatalf("unexpected status %d in %q", resp.Code, out)
		}
		if resp.Chunked {
			// A stream to a client that left ends at a chunk boundary, without the last chunk.
			if err := readChunks(br); err != nil {
				t.Fatalf("malformed chunked body: %v in %q", err, out)
			}
			return
		}
		if _, err := io.ReadAll(resp.Body(br)); err != nil {
			t.Fatalf("malformed response body: %v in %q", err, out)
		}
		if !resp.Chunked && resp.ContentLength < 0 {
			return // delimited by the close
		}
	}
}

// readChunks reads a chunked body that may be cut off between chunks.
func readChunks(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil
		}
		if err != nil || !strings.HasSuffix(line, "\r\n") {
			return fmt.Errorf("chunk size line %q: %v", line, err)
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(line, "\r\n"), 16, 64)
		if err != nil {
			return err
		}
		if n == 0 {
			if rest, _ := io.ReadAll(br); string(rest) != "\r\n" {
				return fmt.Errorf("after the last chunk: %q", rest)
			}
			return nil
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(br, data); err != nil || !bytes.HasSuffix(data, []byte("\r\n")) {
			return fmt.Errorf("chunk of %d: %q %v", n, data, err)
		}
	}
}

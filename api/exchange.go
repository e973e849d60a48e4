package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"gaffer/core"
	"gaffer/http1"
)

// Content types of responses.
const (
	typeJSON    = "application/json"
	typeJSONSeq = "application/x-ndjson" // one JSON document per line
)

// The HTTP/1.1 the server speaks: package http1 reads the requests, strictly (RFC 9112: just what
// curl, net/http and gaffer's own client send, and a clear JSON 4xx for anything else).
//
//   - Connections: HTTP/1.1 ones stay open (keep-alive, pipelining answered in order) until the
//     client sends "Connection: close", an error leaves the stream of requests out of sync, or
//     IdleTimeout passes between requests; HTTP/1.0 requests get one answer and the close.
//   - Request head: at most MaxHeader bytes, received within HeaderTimeout of the connection or
//     of its first byte (408).
//   - Request body: at most MaxBody bytes (413, before reading past the limit; with Expect:
//     100-continue the 413 comes instead of the 100). An unread body ends the connection.
//   - Responses carry Content-Length, except streams (JSON lines): chunked, one chunk per line,
//     then "Connection: close"; close-delimited for HTTP/1.0.

// exchange is one request and its response; one per connection, reset between requests.
type exchange struct {
	s   *Server
	c   *conn
	br  *bufio.Reader
	buf *bytes.Buffer // the response body being encoded
	enc *json.Encoder // writes to buf
	hdr []byte        // the response head being built

	req     *http1.Request
	body    []byte
	query   url.Values
	name    string // the {name} of the route
	label   string // the {label} of the route
	allow   string // the methods of the route, for 405
	pending bool   // the request's body has not been read
	closing bool   // the connection ends after this response
	wrote   bool   // a response (or its head) was written
}

func (x *exchange) reset() {
	x.req, x.body, x.query = nil, nil, nil
	x.name, x.label, x.allow = "", "", ""
	x.pending, x.closing, x.wrote = false, false, false
}

// handle routes a parsed request, reads its body and runs its handler.
func (s *Server) handle(x *exchange) {
	defer func() {
		if r := recover(); r != nil {
			s.opts.Logf("api: panic in %s %s: %v\n%s", x.req.Method, x.req.Path, r, debug.Stack())
			x.closing = true
			if !x.wrote {
				x.fail(errStatus(500, "internal error"))
			}
		}
	}()
	req := x.req
	x.pending = req.HasBody()
	h, err := x.route()
	if err != nil {
		if x.pending {
			x.closing = true // the body stays unread
		}
		x.fail(err)
		return
	}
	if x.pending {
		if !req.Chunked && req.ContentLength > s.opts.MaxBody {
			// Answer before a client that waits for 100 Continue sends the body.
			x.closing = true
			x.fail(errStatus(413, "request body too large (limit "+strconv.FormatInt(s.opts.MaxBody, 10)+" bytes)"))
			return
		}
		if req.ExpectContinue && req.HTTP11 {
			if x.write([]byte("HTTP/1.1 100 Continue\r\n\r\n")) != nil {
				return
			}
			x.wrote = false
		}
		x.c.setReadDeadline(time.Now().Add(bodyTimeout))
		body, err := http1.ReadBody(x.br, req, s.opts.MaxBody)
		if err != nil {
			x.closing = true
			var se *http1.StatusError
			switch {
			case errors.As(err, &se):
				x.fail(err)
			case isTimeout(err) && s.ctx.Err() == nil:
				x.fail(errStatus(408, "request body not received in time"))
			default:
				x.fail(errStatus(400, "incomplete request body"))
			}
			return
		}
		x.pending = false
		x.body = body
	}
	h(s, x)
}

// errStatus is an error answered with code and msg as they are.
func errStatus(code int, msg string) error { return &http1.StatusError{Code: code, Msg: msg} }

// errorStatus maps an error to its status code and message.
func errorStatus(err error) (int, string) {
	var se *http1.StatusError
	switch {
	case errors.As(err, &se):
		return se.Code, se.Msg
	case errors.Is(err, core.ErrNotFound):
		return 404, err.Error()
	case errors.Is(err, core.ErrConflict), errors.Is(err, core.ErrUnavailable):
		return 409, err.Error()
	case errors.Is(err, core.ErrBadRequest):
		return 400, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return 504, err.Error()
	case errors.Is(err, context.Canceled):
		return 503, err.Error()
	}
	return 500, err.Error()
}

// errorBody is every error response: {"error": "message"}.
type errorBody struct {
	Error string `json:"error"`
}

// fail answers with err's status and {"error": message}.
func (x *exchange) fail(err error) {
	code, msg := errorStatus(err)
	if code == 500 {
		x.s.opts.Logf("api: %v", err)
	}
	x.json(code, errorBody{msg})
}

// json answers with v as JSON.
func (x *exchange) json(code int, v any) {
	if line, ok := v.(jsonLine); ok {
		x.respond(code, typeJSON, line)
		return
	}
	x.buf.Reset()
	if err := x.enc.Encode(v); err != nil {
		x.s.opts.Logf("api: cannot encode a response: %v", err)
		x.buf.Reset()
		x.enc.Encode(errorBody{"cannot encode the response"})
		code = 500
	}
	x.respond(code, typeJSON, x.buf.Bytes())
}

// respond writes a whole response in one write.
func (x *exchange) respond(code int, ctype string, body []byte) {
	h := x.head(code, ctype)
	h = append(h, "Content-Length: "...)
	h = strconv.AppendInt(h, int64(len(body)), 10)
	h = append(h, "\r\n\r\n"...)
	x.hdr = h
	x.write(h, body)
}

// head starts a response head: status line, Content-Type, Allow and Connection.
func (x *exchange) head(code int, ctype string) []byte {
	h := append(x.hdr[:0], "HTTP/1.1 "...)
	h = strconv.AppendInt(h, int64(code), 10)
	h = append(h, ' ')
	h = append(h, http1.StatusText(code)...)
	h = append(h, "\r\nContent-Type: "...)
	h = append(h, ctype...)
	h = append(h, "\r\n"...)
	if code == 405 && x.allow != "" {
		h = append(h, "Allow: "...)
		h = append(h, x.allow...)
		h = append(h, "\r\n"...)
	}
	if x.closing {
		h = append(h, "Connection: close\r\n"...)
	}
	return h
}

// write writes bufs with one writev, within writeTimeout.
func (x *exchange) write(bufs ...[]byte) error {
	x.wrote = true
	x.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := x.c.send(bufs); err != nil {
		x.closing = true
		return err
	}
	return nil
}

// stream is a response of JSON lines that are written as they come: chunked for HTTP/1.1,
// delimited by the connection's close for HTTP/1.0.
type stream struct {
	x       *exchange
	chunked bool
	cancel  context.CancelFunc
	gone    atomic.Bool // the client closed its end
	failed  bool        // a write failed
	watched chan struct{}
}

// streamContext returns the context of a stream: it ends when the server closes, and once the
// stream has begun when the client goes away. It carries the server's StreamBudget for the
// Backend's queues.
func (x *exchange) streamContext() (context.Context, context.CancelFunc) {
	return context.WithCancel(core.WithStreamBudget(x.s.ctx, x.s.streams))
}

// begin writes the response head and starts watching the connection: whatever the client sends
// now is discarded, and its EOF (or any read error) cancels the stream.
func (x *exchange) begin(cancel context.CancelFunc) *stream {
	x.closing = true
	st := &stream{x: x, chunked: x.req.HTTP11, cancel: cancel, watched: make(chan struct{})}
	h := x.head(200, typeJSONSeq)
	h = append(h, "Cache-Control: no-store\r\n"...)
	if st.chunked {
		h = append(h, "Transfer-Encoding: chunked\r\n"...)
	}
	h = append(h, "\r\n"...)
	x.hdr = h
	if x.write(h) != nil {
		st.failed = true
		cancel()
	}
	x.c.setReadDeadline(time.Time{})
	go func() {
		defer close(st.watched)
		_, err := io.Copy(io.Discard, x.c.Conn)
		if !isTimeout(err) { // a timeout is the server waking the watcher: the client is still there
			st.gone.Store(true)
		}
		cancel()
	}()
	return st
}

// send writes v as one JSON line, flushed at once.
func (st *stream) send(v any) error {
	x := st.x
	line, ok := v.(jsonLine)
	if !ok {
		x.buf.Reset()
		if err := x.enc.Encode(v); err != nil {
			return err
		}
		line = x.buf.Bytes()
	}
	var err error
	if st.chunked {
		h := strconv.AppendInt(x.hdr[:0], int64(len(line)), 16)
		h = append(h, "\r\n"...)
		x.hdr = h
		err = x.write(h, line, []byte("\r\n"))
	} else {
		err = x.write(line)
	}
	if err != nil {
		st.failed = true
		st.cancel()
	}
	return err
}

// Dropped is the line a stream sends in place of the lines a client lost by falling behind:
// {"dropped": N}, N lines lost between the line before it and the line after it.
type Dropped struct {
	Count int `json:"dropped"`
}

// sendDropped writes {"dropped": n} when n lines were lost before the next one.
func (st *stream) sendDropped(n int) error {
	if n <= 0 {
		return nil
	}
	return st.send(Dropped{n})
}

// end finishes the stream (the last chunk, when the client is still there) and stops watching.
func (st *stream) end() {
	if st.chunked && !st.failed && !st.gone.Load() {
		st.x.write([]byte("0\r\n\r\n"))
	}
	st.cancel()
	st.x.c.shutdown() // wakes the watcher; the connection ends with the stream
	<-st.watched
}

package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gaffer/http1"
)

const (
	maxResponseBody = 64 << 20 // what Do reads at most
	maxStreamLine   = 16 << 20 // one JSON line of a stream
)

// Client talks to gaffer's API socket, one connection per call.
type Client struct {
	Path string // the socket's path
	// Timeout bounds a whole Do, and a Stream until the response head arrives; 0 leaves it to ctx.
	Timeout time.Duration
}

// StatusError is an answer other than 2xx; Message is the server's {"error": ...}.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return e.Message }

// Do sends a request and returns the response's status and body. err reports only failures to
// talk to gaffer (a missing socket, a refused connection, a timeout), in one line: "cannot reach
// gaffer at /run/gaffer.sock: connection refused". path is the request target ("/v1/info") and
// must already be escaped; body, when not nil, is sent with its Content-Length.
func (c *Client) Do(ctx context.Context, method, path string, body []byte) (status int, respBody []byte, err error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	conn, br, resp, stop, err := c.open(ctx, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	defer stop()
	defer conn.Close()
	if n := resp.ContentLength; n >= 0 && n <= maxResponseBody && !resp.Chunked {
		respBody = make([]byte, n)
		if _, err := io.ReadFull(br, respBody); err != nil {
			return resp.Code, nil, c.talkError(ctx, err)
		}
		return resp.Code, respBody, nil
	}
	respBody, err = io.ReadAll(io.LimitReader(resp.Body(br), maxResponseBody+1))
	if err != nil {
		return resp.Code, nil, c.talkError(ctx, err)
	}
	if len(respBody) > maxResponseBody {
		return resp.Code, nil, fmt.Errorf("the answer of gaffer at %s is over %d bytes", c.Path, maxResponseBody)
	}
	return resp.Code, respBody, nil
}

// Stream sends a request whose answer is JSON lines (?watch=1, ?follow=1, /v1/events) and calls
// fn with each line, without its newline, until the server ends the stream (err nil), ctx ends
// (ctx.Err()) or fn returns an error (that error). An answer other than 2xx is a *StatusError.
func (c *Client) Stream(ctx context.Context, method, path string, body []byte, fn func(line []byte) error) (status int, err error) {
	head := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		head, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	conn, br, resp, stop, err := c.open(head, method, path, body)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	// From now on only ctx bounds the stream, not the head's timeout.
	if !stop() {
		return resp.Code, c.talkError(head, head.Err())
	}
	conn.SetDeadline(time.Time{})
	defer context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })()
	r := resp.Body(br)
	if resp.Code < 200 || resp.Code > 299 {
		b, err := io.ReadAll(io.LimitReader(r, 1<<20))
		if err != nil {
			return resp.Code, c.talkError(ctx, err)
		}
		return resp.Code, answerError(resp.Code, b)
	}
	lr := bufio.NewReaderSize(r, 64<<10)
	var acc []byte
	for {
		frag, err := lr.ReadSlice('\n')
		switch err {
		case bufio.ErrBufferFull:
			if len(acc)+len(frag) > maxStreamLine {
				return resp.Code, fmt.Errorf("a line from gaffer at %s is over %d bytes", c.Path, maxStreamLine)
			}
			acc = append(acc, frag...)
			continue
		case nil, io.EOF:
			line := frag
			if acc != nil {
				line = append(acc, frag...)
				acc = nil
			}
			line = bytes.TrimRight(line, "\r\n")
			if len(line) > 0 {
				if ferr := fn(line); ferr != nil {
					return resp.Code, ferr
				}
			}
			if err == io.EOF {
				return resp.Code, nil
			}
		default:
			if ctx.Err() != nil {
				return resp.Code, ctx.Err()
			}
			return resp.Code, c.talkError(ctx, err)
		}
	}
}

// JSON sends in as a JSON body (nil: no body) and decodes a 2xx answer into out (nil: ignore it).
// Other answers are a *StatusError.
func (c *Client) JSON(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	code, resp, err := c.Do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if code < 200 || code > 299 {
		return answerError(code, resp)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp, out); err != nil {
		return fmt.Errorf("malformed answer from gaffer at %s: %w", c.Path, err)
	}
	return nil
}

// answerError makes a *StatusError of an answer's status and body.
func answerError(code int, body []byte) *StatusError {
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		return &StatusError{code, eb.Error}
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" || len(msg) > 200 {
		msg = strconv.Itoa(code) + " " + http1.StatusText(code)
	}
	return &StatusError{code, msg}
}

// open dials, sends the request and reads the response head; until stop is called, ctx ending
// cuts the connection.
func (c *Client) open(ctx context.Context, method, path string, body []byte) (net.Conn, *bufio.Reader, *http1.Response, func() bool, error) {
	if !http1.IsToken([]byte(method)) {
		return nil, nil, nil, nil, fmt.Errorf("malformed method %q", method)
	}
	if path == "" || path[0] != '/' || strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return nil, nil, nil, nil, fmt.Errorf("malformed request path %q", path)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return nil, nil, nil, nil, c.reachError(ctx, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error) (net.Conn, *bufio.Reader, *http1.Response, func() bool, error) {
		stop()
		conn.Close()
		return nil, nil, nil, nil, c.talkError(ctx, err)
	}
	req := make([]byte, 0, 128+len(path))
	req = append(req, method...)
	req = append(req, ' ')
	req = append(req, path...)
	req = append(req, " HTTP/1.1\r\nHost: gaffer\r\nUser-Agent: gaffer\r\nConnection: close\r\n"...)
	if body != nil || method == "POST" {
		req = append(req, "Content-Length: "...)
		req = strconv.AppendInt(req, int64(len(body)), 10)
		req = append(req, "\r\n"...)
	}
	req = append(req, "\r\n"...)
	bufs := net.Buffers{req, body}
	if _, err := bufs.WriteTo(conn); err != nil {
		// The server may have answered (413, 403) and closed before reading everything: read on.
		if ctx.Err() != nil {
			return fail(err)
		}
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http1.ReadResponse(br, DefaultMaxHeader)
	if err != nil {
		return fail(err)
	}
	return conn, br, resp, stop, nil
}

// reachError says in one line why gaffer's socket could not be dialled.
func (c *Client) reachError(ctx context.Context, err error) error {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		return fmt.Errorf("cannot reach gaffer at %s: %w", c.Path, errno)
	case ctx.Err() != nil:
		return fmt.Errorf("cannot reach gaffer at %s: %w", c.Path, ctx.Err())
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return fmt.Errorf("cannot reach gaffer at %s: %w", c.Path, err)
}

// talkError says in one line why an exchange with gaffer failed after connecting.
func (c *Client) talkError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("no answer from gaffer at %s: %w", c.Path, ctx.Err())
	}
	var se *http1.StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("malformed answer from gaffer at %s: %s", c.Path, se.Msg)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("gaffer at %s closed the connection", c.Path)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("lost the connection to gaffer at %s: %w", c.Path, errno)
	}
	return fmt.Errorf("lost the connection to gaffer at %s: %w", c.Path, err)
}

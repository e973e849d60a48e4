// Package rawhttp is the load client of the benchmarks: one fixed request sent again and again on
// a kept-alive Unix-socket connection, the answer read into a reused buffer. net/http, and
// decoding every answer, would cost the clients, on the same cpus as the server, more than the
// server spends.
package rawhttp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"gaffer/http1"
)

// Client sends Req to the server on Sock.
type Client struct {
	Sock string
	Req  []byte // a whole HTTP/1.1 request
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
}

// Close closes the connection, if one is open.
func (c *Client) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// Do sends the request and returns the answer's body (valid until the next call); anything but
// 200 is an error.
func (c *Client) Do() ([]byte, error) {
	if c.conn == nil {
		conn, err := net.Dial("unix", c.Sock)
		if err != nil {
			return nil, err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 64<<10)
	}
	body, keep, err := c.exchange()
	if err != nil || !keep {
		c.Close()
	}
	return body, err
}

// GetJSON does the request and decodes the answer into v.
func (c *Client) GetJSON(v any) error {
	b, err := c.Do()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (c *Client) exchange() (body []byte, keep bool, err error) {
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(c.Req); err != nil {
		return nil, false, err
	}
	resp, err := http1.ReadResponse(c.br, 64<<10)
	if err != nil {
		return nil, false, err
	}
	keep = resp.Proto == "HTTP/1.1" && !strings.EqualFold(resp.Header["connection"], "close") &&
		(resp.Chunked || resp.ContentLength >= 0)
	r := resp.Body(c.br)
	c.buf = c.buf[:0]
	for {
		if len(c.buf) == cap(c.buf) {
			c.buf = slices.Grow(c.buf, 64<<10)
		}
		n, err := r.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	if resp.Code != 200 {
		return nil, false, fmt.Errorf("status %d: %.200s", resp.Code, c.buf)
	}
	return c.buf, keep, nil
}

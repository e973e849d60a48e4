package http1

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

const (
	fuzzMaxBody   = 64
	fuzzMaxHeader = 1024
)

// FuzzReadRequest: no body read passes the limit, by a byte, and chunked framing stays within
// ChunkFraming.
func FuzzReadRequest(f *testing.F) {
	for _, seed := range []string{
		"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/processes/web.2 HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n",
		"POST /v1/processes/web/signal HTTP/1.1\r\nHost: x\r\nContent-Length: 29\r\n\r\n{\"signal\":\"HUP\",\"group\":true}",
		"POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"POST /v1/processes/web/stdin HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n",
		"POST /v1/processes/web/streams/audit?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nhi",
		"PUT http://x/v1/processes/web%2e2/stop HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/info HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
		"\r\nGET / HTTP/9.9\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		br := bufio.NewReaderSize(cr, 4096)
		consumed := func() int { return cr.n - br.Buffered() }
		for {
			req, err := ReadRequest(br, fuzzMaxHeader)
			if err != nil {
				break
			}
			before := consumed()
			body, err := ReadBody(br, req, fuzzMaxBody)
			used := consumed() - before
			if len(body) > fuzzMaxBody {
				t.Fatalf("a body of %d bytes, over the limit %d", len(body), fuzzMaxBody)
			}
			if limit := fuzzMaxBody + ChunkFraming; (req.Chunked && used > limit) || (!req.Chunked && used > fuzzMaxBody) {
				t.Fatalf("read %d bytes of body (chunked %v), over the limit", used, req.Chunked)
			}
			if err != nil {
				break
			}
		}
	})
}

// FuzzReadResponse: reading a response head never takes more than its bound (plus what one read
// of br's buffer brings), whatever comes.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 503\r\nX: y\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 1, 1\n\nx",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		const buf = 16
		br := bufio.NewReaderSize(cr, buf)
		resp, err := ReadResponse(br, fuzzMaxHeader)
		if used := cr.n - br.Buffered(); used > fuzzMaxHeader+buf {
			t.Fatalf("read %d bytes of head, over the limit %d", used, fuzzMaxHeader)
		}
		if err != nil {
			return
		}
		if resp.Code < 200 || resp.Code > 999 {
			t.Fatalf("status %d", resp.Code)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body(br), 1<<20))
	})
}

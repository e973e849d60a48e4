package http1

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// Response is a parsed response head.
type Response struct {
	Proto         string // "HTTP/1.1" or "HTTP/1.0"
	Code          int
	ContentLength int64 // -1 when absent
	Chunked       bool
	// Header holds the fields by lower-case name; the values of a repeated field are joined
	// with ", ".
	Header map[string]string
}

// ReadResponse reads a response head, skipping 1xx interim responses; the heads it reads hold at
// most maxHeader bytes together. A head it cannot read is a *StatusError: 502 for the status line
// or too many fields, 400 for a malformed field, 431 past maxHeader. The end of the connection
// before the whole head is io.ErrUnexpectedEOF; read errors (timeouts) come as they are.
func ReadResponse(br *bufio.Reader, maxHeader int) (*Response, error) {
	budget := maxHeader
	for {
		line, err := readLine(br, &budget, 431, "response head too large")
		if err != nil {
			return nil, eofUnexpected(err)
		}
		// "HTTP/1.1 200 OK": the reason phrase may be empty.
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
			!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || (len(line) > 12 && line[12] != ' ') {
			return nil, errStatus(502, "malformed status line")
		}
		resp := &Response{
			Proto:         string(line[:8]),
			Code:          int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0'),
			ContentLength: -1,
			Header:        map[string]string{},
		}
		for n := 0; ; n++ {
			if line, err = readLine(br, &budget, 431, "response head too large"); err != nil {
				return nil, eofUnexpected(err)
			}
			if len(line) == 0 {
				break
			}
			if n == maxHeaderLines {
				return nil, errStatus(502, "too many header fields")
			}
			name, value, err := splitField(line)
			if err != nil {
				return nil, err
			}
			switch {
			case equalFold(name, "content-length"):
				if resp.ContentLength, err = parseContentLength(value); err != nil {
					return nil, err
				}
			case equalFold(name, "transfer-encoding"):
				resp.Chunked = equalFold(value, "chunked")
			}
			key := strings.ToLower(string(name))
			if v, ok := resp.Header[key]; ok {
				resp.Header[key] = v + ", " + string(value)
			} else {
				resp.Header[key] = string(value)
			}
		}
		if resp.Code >= 200 {
			return resp, nil
		}
	}
}

// Body returns the reader of the response's body, which follows its head in br: chunked
// (decoded), Content-Length bytes, or everything until the connection's close.
func (r *Response) Body(br *bufio.Reader) io.Reader {
	switch {
	case r.Chunked:
		return newChunkedReader(br, -1)
	case r.ContentLength >= 0:
		return io.LimitReader(br, r.ContentLength)
	}
	return br
}

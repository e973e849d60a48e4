// Package http1 reads HTTP/1.1 messages (RFC 9112), strictly: the requests gaffer's API server
// accepts (just what curl, net/http and gaffer's own client send), and the responses its client
// and its readiness probes read. Every read is bounded: heads in bytes and fields, chunked framing
// in bytes, bodies by the caller's limit. It imports nothing of gaffer's, so that package pid1 can
// probe HTTP without the API.
//
//   - Heads: at most maxHeader bytes (431) and 128 fields (431); a bare LF ends a line as CRLF
//     does; obsolete line folding, whitespace before a colon and control characters are 400.
//   - Requests: versions 1.0 and 1.1 (others are 505); exactly one Host in HTTP/1.1 (400);
//     malformed or conflicting Content-Length is 400; Transfer-Encoding with Content-Length is 400
//     (smuggling); the only transfer coding is chunked (else 501); Expect other than 100-continue
//     is 417; the absolute form of the target is accepted, its path kept.
//   - Bodies: by Content-Length, or chunked (decoded, extensions and trailers skipped), with a
//     limit that fails with 413 before reading past it.
//   - Responses: 1xx interim responses are skipped; a malformed status line is 502.
package http1

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
)

const (
	maxHeaderLines = 128 // header fields in one request or response head

	// ChunkFraming bounds the bytes of chunk-size lines, extensions and trailers of one chunked
	// body (413 past it), apart from the body's own limit.
	ChunkFraming = 64 << 10
)

// StatusError is an HTTP error status with its message: what a malformed or unacceptable message
// is answered with (or, for a response, why it could not be read).
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return e.Msg }

func errStatus(code int, msg string) error { return &StatusError{code, msg} }

// StatusText is the reason phrase of every status gaffer's API sends, and "Status N" for others.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 417:
		return "Expectation Failed"
	case 422:
		return "Unprocessable Content"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(code)
}

// readLine returns the next line without its CRLF (a bare LF ends a line too, RFC 9112 2.2),
// charging the bytes read to *budget; over budget it fails with status tooLong and message msg.
// The line may alias br's buffer: it is valid until the next read. At EOF it returns io.EOF when
// nothing was read, else io.ErrUnexpectedEOF.
func readLine(br *bufio.Reader, budget *int, tooLong int, msg string) ([]byte, error) {
	var acc []byte
	for {
		frag, err := br.ReadSlice('\n')
		*budget -= len(frag)
		if *budget < 0 {
			return nil, errStatus(tooLong, msg)
		}
		switch err {
		case nil:
			line := frag
			if acc != nil {
				line = append(acc, frag...)
			}
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if bytes.IndexByte(line, '\r') >= 0 {
				return nil, errStatus(400, "bare CR in message head")
			}
			return line, nil
		case bufio.ErrBufferFull:
			acc = append(acc, frag...)
			continue
		case io.EOF:
			if len(acc)+len(frag) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
		}
		return nil, err
	}
}

// splitField splits "name: value", rejecting obsolete line folding, whitespace before the colon,
// and control characters in the value.
func splitField(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, errStatus(400, "obsolete line folding in header")
	}
	i := bytes.IndexByte(line, ':')
	if i <= 0 || !IsToken(line[:i]) {
		return nil, nil, errStatus(400, "malformed header field")
	}
	value = bytes.Trim(line[i+1:], " \t")
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, errStatus(400, "control character in header value")
		}
	}
	return line[:i], value, nil
}

// parseContentLength accepts digits, or a list of identical values (RFC 9110 8.6). A length too
// large for int64 is reported as the largest one, which every limit rejects.
func parseContentLength(v []byte) (int64, error) {
	n := int64(-1)
	for _, part := range bytes.Split(v, []byte(",")) {
		part = bytes.Trim(part, " \t")
		if len(part) == 0 {
			return 0, errStatus(400, "malformed Content-Length")
		}
		var m int64
		for _, c := range part {
			if !isDigit(c) {
				return 0, errStatus(400, "malformed Content-Length")
			}
			if m > (1<<63-1-9)/10 {
				m = 1<<63 - 1
				continue
			}
			m = m*10 + int64(c-'0')
		}
		if n >= 0 && m != n {
			return 0, errStatus(400, "conflicting Content-Length values")
		}
		n = m
	}
	return n, nil
}

// eachToken calls fn for each element of a comma-separated list.
func eachToken(v []byte, fn func([]byte)) {
	for _, tok := range bytes.Split(v, []byte(",")) {
		if tok = bytes.Trim(tok, " \t"); len(tok) > 0 {
			fn(tok)
		}
	}
}

// equalFold compares ASCII case-insensitively, without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// IsToken reports whether b is a non-empty RFC 9110 token (a method, a field name).
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', isDigit(c):
		case bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

package http1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	many := strings.Repeat("X: y\r\n", maxHeaderLines+1)
	for _, tt := range []struct {
		name, raw string
		code      int // 0: an error is wanted
		errCode   int // of the *StatusError; 0: io.ErrUnexpectedEOF
		header    map[string]string
		body      string
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}extra", 200, 0,
			map[string]string{"content-type": "application/json", "content-length": "2"}, "{}"},
		{"no reason phrase", "HTTP/1.1 204\r\n\r\n", 204, 0, map[string]string{}, ""},
		{"HTTP/1.0, bare LF, to the close", "HTTP/1.0 503 Service Unavailable\nConnection: close\n\nbye", 503, 0,
			map[string]string{"connection": "close"}, "bye"},
		{"interim responses skipped", "HTTP/1.1 100 Continue\r\nA: 1\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 201, 0,
			map[string]string{"content-length": "0"}, ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n1;x=y\r\nd\r\n0\r\nT: 1\r\n\r\n", 200, 0,
			map[string]string{"transfer-encoding": "Chunked"}, "abcd"},
		{"repeated field", "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nallow: HEAD\r\nContent-Length: 0\r\n\r\n", 405, 0,
			map[string]string{"allow": "GET, HEAD", "content-length": "0"}, ""},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, 502, nil, ""},
		{"HTTP/2", "HTTP/2 200\r\n\r\n", 0, 502, nil, ""},
		{"double space", "HTTP/1.1  200 OK\r\n\r\n", 0, 502, nil, ""},
		{"not HTTP", "ICY 200 OK\r\n\r\n", 0, 502, nil, ""},
		{"status glued to reason", "HTTP/1.1 200OK\r\n\r\n", 0, 502, nil, ""},
		{"malformed field", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", 0, 400, nil, ""},
		{"malformed content-length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", 0, 400, nil, ""},
		{"too many fields", "HTTP/1.1 200 OK\r\n" + many + "\r\n", 0, 502, nil, ""},
		{"head too large", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("y", 2000) + "\r\n\r\n", 0, 431, nil, ""},
		{"interim heads count too", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 100) + "HTTP/1.1 200 OK\r\n\r\n", 0, 431, nil, ""},
		{"truncated head", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", 0, 0, nil, ""},
		{"nothing", "", 0, 0, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.raw), 16)
			resp, err := ReadResponse(br, 1024)
			if tt.code == 0 {
				var se *StatusError
				switch {
				case err == nil:
					t.Fatalf("read %+v, want an error", resp)
				case tt.errCode == 0 && !errors.Is(err, io.ErrUnexpectedEOF):
					t.Fatalf("error %v, want io.ErrUnexpectedEOF", err)
				case tt.errCode != 0 && (!errors.As(err, &se) || se.Code != tt.errCode):
					t.Fatalf("error %#v, want a *StatusError %d", err, tt.errCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Code != tt.code || len(resp.Header) != len(tt.header) {
				t.Fatalf("read %+v, want %d with %v", resp, tt.code, tt.header)
			}
			for k, v := range tt.header {
				if resp.Header[k] != v {
					t.Errorf("%s: %q, want %q", k, resp.Header[k], v)
				}
			}
			body, err := io.ReadAll(resp.Body(br))
			if err != nil || string(body) != tt.body {
				t.Errorf("body %q %v, want %q", body, err, tt.body)
			}
		})
	}
}

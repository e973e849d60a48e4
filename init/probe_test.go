package pid1

import (
	"bufio"
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gaffer/config"
)

// probeServer answers each connection with answer, after reading the request head, which it
// keeps; the connection stays open until answer returns and the test ends.
type probeServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	head []string // the request head's lines; guarded by mu
}

func startProbeServer(t *testing.T, answer func(c net.Conn)) *probeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &probeServer{ln: ln}
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(c)
				var head []string
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line = strings.TrimRight(line, "\r\n"); line == "" {
						break
					}
					head = append(head, line)
				}
				s.mu.Lock()
				s.head = head
				s.mu.Unlock()
				answer(c)
				<-done
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *probeServer) url(path string) string { return "http://" + s.ln.Addr().String() + path }

func writeString(s string) func(net.Conn) { return func(c net.Conn) { io.WriteString(c, s) } }

// TestHTTPProbe: a final 2xx status is ready, whatever the body does (the probe reads the head
// only); other statuses and malformed answers are not.
func TestHTTPProbe(t *testing.T) {
	for _, tt := range []struct {
		name    string
		answer  func(net.Conn)
		wantErr string // "" for ready
	}{
		{"200, body never sent", writeString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), ""},
		{"204 HTTP/1.0", writeString("HTTP/1.0 204 No Content\r\n\r\n"), ""},
		{"103 then 200", writeString("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), ""},
		{"503", writeString("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"), "status 503"},
		{"301", writeString("HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"), "status 301"},
		{"not HTTP", writeString("SSH-2.0-OpenSSH_9.2\r\n"), "status"},
		{"closed without an answer", func(net.Conn) {}, "status"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startProbeServer(t, func(c net.Conn) {
				tt.answer(c)
				if tt.name == "closed without an answer" {
					c.Close()
				}
			})
			err := probeOnce(context.Background(), config.Probe{Kind: config.ProbeHTTP, Target: s.url("/ready?x=1")})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("not ready: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tt.wantErr)
			}
			s.mu.Lock()
			head := s.head
			s.mu.Unlock()
			host := s.ln.Addr().String()
			if len(head) == 0 || head[0] != "GET /ready?x=1 HTTP/1.1" || !slices.Contains(head, "Host: "+host) || !slices.Contains(head, "Connection: close") {
				t.Errorf("request head %q", head)
			}
		})
	}
}

// TestHTTPProbeBounded: an answer whose head never ends fails the probe once the head passes its
// bound. The probe used to read a status line until its timeout: 1174 MiB in 2 s here.
func TestHTTPProbeBounded(t *testing.T) {
	for _, tt := range []struct{ name, start, repeat string }{
		{"endless status line", "HTTP/1.1 200 ", "x"},
		{"endless header", "HTTP/1.1 200 OK\r\n", "X-Pad: " + strings.Repeat("p", 100) + "\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startProbeServer(t, func(c net.Conn) {
				chunk := []byte(strings.Repeat(tt.repeat, 64<<10/len(tt.repeat)))
				if _, err := io.WriteString(c, tt.start); err != nil {
					return
				}
				for {
					if _, err := c.Write(chunk); err != nil {
						return // the probe has gone
					}
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := probeOnce(ctx, config.Probe{Kind: config.ProbeHTTP, Target: s.url("/")})
			if err == nil || !strings.Contains(err.Error(), "too large") && !strings.Contains(err.Error(), "too many") {
				t.Fatalf("error %v, want the head's bound", err)
			}
		})
	}
}

package pid1

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"gaffer/config"
	"gaffer/http1"
)

// probeOnce checks readiness once. exec probes are not handled here: they start a child, which
// only the loop may do through the reaper.
func probeOnce(ctx context.Context, p config.Probe) error {
	switch p.Kind {
	case config.ProbeTCP:
		ctx, cancel := withDefaultTimeout(ctx, time.Second)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(p.Target, "tcp://"))
		if err != nil {
			return err
		}
		return c.Close()
	case config.ProbeHTTP, config.ProbeHTTPS:
		return httpGet(ctx, p.Target)
	case config.ProbeFile:
		_, err := os.Stat(strings.TrimPrefix(p.Target, "file://"))
		return err
	}
	return fmt.Errorf("unknown probe %q", p.Kind)
}

// withDefaultTimeout bounds ctx by d unless it has a deadline already: a readiness probe is tried
// again soon, so each try is short; a health check has its own health_timeout.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// probeMaxHead bounds the response head an HTTP probe reads (status line and fields, 1xx included).
const probeMaxHead = 64 << 10

// httpGet asks for target and wants a 2xx status. It speaks just enough HTTP/1.1 for a probe:
// importing net/http would add its start-up cost to every gaffer, also `gaffer --`, which needs
// none of it.
func httpGet(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	ctx, cancel := withDefaultTimeout(ctx, 2*time.Second)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if u.Scheme == "https" {
		// With TLS only in builds that ask for it: see probe_tls.go.
		if conn, err = probeTLS(ctx, conn, u.Hostname()); err != nil {
			return err
		}
	}
	path := u.RequestURI()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gaffer-probe\r\nConnection: close\r\n\r\n", path, u.Host); err != nil {
		return err
	}
	// The head only: the status says it all, and the body may be long, or never come.
	resp, err := http1.ReadResponse(bufio.NewReader(conn), probeMaxHead)
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	if resp.Code < 200 || resp.Code > 299 {
		return fmt.Errorf("status %d", resp.Code)
	}
	return nil
}

package api

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"gaffer/http1"
	"gaffer/stats"
)

// benchClients is how many clients ask at once, as in the benchmark.
const benchClients = 16

// cachedStats returns one snapshot of n processes, as gaffer's stats cache does between
// collections.
func cachedStats(n int) func(context.Context, map[string]int) (stats.Snapshot, error) {
	b := newFakeBackend(n)
	snap, _ := fakeStats(context.Background(), b.Pids())
	for i := range snap.Processes {
		e := &snap.Processes[i]
		e.CPUPercent, e.CPUUserS, e.CPUSystemS, e.NumThreads, e.NumFDs = 1.5, 12.25, 3.5, 4, 12
		e.IOReadBytes, e.IOWriteBytes, e.CtxSwitches, e.MemoryVMS = 1<<20, 1<<22, 12345, 1<<30
		e.Tree = e.Proc
	}
	return func(context.Context, map[string]int) (stats.Snapshot, error) { return snap, nil }
}

// runClients runs benchClients clients, each doing its share of n requests with do, and reports
// requests/s and latency percentiles.
func runClients(b *testing.B, n int, do func(c int) func() error) {
	var wg sync.WaitGroup
	lat := make([][]time.Duration, benchClients)
	errs := make(chan error, benchClients)
	b.ResetTimer()
	start := time.Now()
	for c := range benchClients {
		share := n / benchClients
		if c < n%benchClients {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := do(c)
			l := make([]time.Duration, 0, share)
			for range share {
				t0 := time.Now()
				if err := req(); err != nil {
					errs <- err
					return
				}
				l = append(l, time.Since(t0))
			}
			lat[c] = l
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(float64(n)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// BenchmarkStats measures GET /v1/stats for 100 processes from 16 clients on kept-alive
// connections (what curl and net/http clients do).
func BenchmarkStats(b *testing.B) {
	s := startServer(b, newFakeBackend(100), func(o *Options) { o.Stats = cachedStats(100); o.Logf = nil })
	runClients(b, b.N, func(int) func() error {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		br := bufio.NewReaderSize(c, 64<<10)
		req := []byte("GET /v1/stats HTTP/1.1\r\nHost: gaffer\r\n\r\n")
		return func() error {
			if _, err := c.Write(req); err != nil {
				return err
			}
			resp, err := http1.ReadResponse(br, DefaultMaxHeader)
			if err != nil {
				return err
			}
			if resp.Code != 200 || resp.ContentLength < 20000 {
				return fmt.Errorf("status %d, %d bytes", resp.Code, resp.ContentLength)
			}
			_, err = br.Discard(int(resp.ContentLength))
			return err
		}
	})
}

// BenchmarkStatsNewConn is BenchmarkStats with one connection per request, as gaffer's own
// client (Client.Do) makes.
func BenchmarkStatsNewConn(b *testing.B) {
	s := startServer(b, newFakeBackend(100), func(o *Options) { o.Stats = cachedStats(100); o.Logf = nil })
	runClients(b, b.N, func(int) func() error {
		c := Client{Path: s.Path(), Timeout: 5 * time.Second}
		return func() error {
			code, body, err := c.Do(context.Background(), "GET", "/v1/stats", nil)
			if err == nil && (code != 200 || len(body) < 20000) {
				err = fmt.Errorf("status %d, %d bytes", code, len(body))
			}
			return err
		}
	})
}

package api

import (
	"context"
	"encoding/json"
	"testing"

	"gaffer/core"
)

// /v1/info reports gaffer's own goroutines and open descriptors, for watching it leak neither.
func TestInfoGoroutinesAndOpenFDs(t *testing.T) {
	s := startServer(t, newFakeBackend(2), nil)
	code, body, err := (&Client{Path: s.Path()}).Do(context.Background(), "GET", "/v1/info", nil)
	if err != nil || code != 200 {
		t.Fatalf("%d %s %v", code, body, err)
	}
	var info core.Info
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	// At least the listener, the connection and the test's end of it; the accept loop and the
	// connection's handler.
	if info.OpenFDs < 3 || info.Goroutines < 2 {
		t.Errorf("open_fds %d, goroutines %d in %s", info.OpenFDs, info.Goroutines, body)
	}
}

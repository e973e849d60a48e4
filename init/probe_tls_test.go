//go:build !gaffer_notls

package pid1

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gaffer/config"
)

// TestHTTPSProbe: with TLS built in, an https probe speaks TLS (the server's certificate is not
// checked) and wants a 2xx status like an http probe.
func TestHTTPSProbe(t *testing.T) {
	for _, tt := range []struct {
		status  int
		wantErr string
	}{{200, ""}, {503, "status 503"}} {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tt.status)
		}))
		err := probeOnce(context.Background(), config.Probe{Kind: config.ProbeHTTPS, Target: srv.URL + "/ready"})
		srv.Close()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%d: not ready: %v", tt.status, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%d: error %v, want one with %q", tt.status, err, tt.wantErr)
		}
	}
	if !HTTPSProbes {
		t.Error("HTTPSProbes is false in a build without gaffer_notls")
	}
}

//go:build gaffer_notls

package pid1

import (
	"context"
	"errors"
	"net"
	"testing"

	"gaffer/config"
)

// TestHTTPSProbeWithoutTLS: a build without TLS fails an https probe with errNoTLS, after
// connecting (the config loader refuses such probes before; this is the backstop), and says so.
func TestHTTPSProbeWithoutTLS(t *testing.T) {
	s := startProbeServer(t, func(net.Conn) {})
	err := probeOnce(context.Background(), config.Probe{Kind: config.ProbeHTTPS, Target: "https://" + s.ln.Addr().String() + "/"})
	if !errors.Is(err, errNoTLS) {
		t.Fatalf("error %v, want errNoTLS", err)
	}
	if HTTPSProbes {
		t.Error("HTTPSProbes is true in a gaffer_notls build")
	}
}

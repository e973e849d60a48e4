//go:build !gaffer_tls

package pid1

import (
	"context"
	"errors"
	"net"
)

// HTTPSProbes says whether this gaffer can run https:// readiness probes. crypto/tls is 2.2 MB
// of a 4.5 MB gaffer and Go links what it imports into every command, so only builds with
// -tags gaffer_tls have it; the others refuse https probes when they load the config.
const HTTPSProbes = false

// errNoTLS is why this build cannot run an https probe.
var errNoTLS = errors.New("https probes need a gaffer built with -tags gaffer_tls (this one has no TLS); use http://, tcp:// or exec: with a client in the image")

// probeTLS fails: this build has no TLS.
func probeTLS(context.Context, net.Conn, string) (net.Conn, error) {
	return nil, errNoTLS
}

//go:build gaffer_notls

package pid1

import (
	"context"
	"errors"
	"net"
)

// HTTPSProbes says whether this gaffer can run https:// readiness probes: not in a build with
// -tags gaffer_notls, which leaves crypto/tls (2.2 MB) out and refuses https probes when it
// loads the config.
const HTTPSProbes = false

// errNoTLS is why this build cannot run an https probe.
var errNoTLS = errors.New("https probes need a gaffer built without -tags gaffer_notls (this one has no TLS); use http://, tcp:// or exec: with a client in the image")

// probeTLS fails: this build has no TLS.
func probeTLS(context.Context, net.Conn, string) (net.Conn, error) {
	return nil, errNoTLS
}

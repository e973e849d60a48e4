//go:build !gaffer_notls

package pid1

import (
	"context"
	"crypto/tls"
	"net"
)

// HTTPSProbes says whether this gaffer can run https:// readiness probes. crypto/tls is 2.4 MB
// of the binary and Go links what it imports into every command, so a build with
// -tags gaffer_notls leaves it out and refuses https probes when it loads the config; the
// release keeps it, since https probes are a documented feature.
const HTTPSProbes = true

// probeTLS speaks TLS over conn to serverName. A readiness probe asks whether the server
// answers, usually on localhost with a certificate for another name: it does not authenticate
// the server.
func probeTLS(ctx context.Context, conn net.Conn, serverName string) (net.Conn, error) {
	tc := tls.Client(conn, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

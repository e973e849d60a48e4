//go:build !gaffer_notls

package main

import (
	"context"
	"crypto/tls"
	"net"
)

// dialTLS speaks TLS over conn, as gaffer's https probes (init/probe_tls.go).
func dialTLS(ctx context.Context, conn net.Conn) (net.Conn, error) {
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

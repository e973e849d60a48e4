//go:build gaffer_notls

package main

import (
	"context"
	"errors"
	"net"
)

// dialTLS fails: -tags gaffer_notls leaves crypto/tls out, as gaffer's init/probe_notls.go.
func dialTLS(context.Context, net.Conn) (net.Conn, error) {
	return nil, errors.New("built with -tags gaffer_notls: no TLS")
}

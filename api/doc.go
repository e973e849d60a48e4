// Package api serves gaffer's control and stats API over a Unix socket: HTTP/1.1 with JSON, spoken
// directly on net (net/http would add its start-up cost to every gaffer, also `gaffer --`), so that
// curl --unix-socket works as well as gaffer's own client. What it serves is a core.Backend.
package api

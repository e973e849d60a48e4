package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// ParseProbe reads a readiness probe: tcp://HOST:PORT, http://... or https://... (ready on a 2xx
// answer), file:///ABS/PATH (ready when the file exists), exec:CMD (ready when CMD exits 0),
// notify (ready when the process sends READY=1 to NOTIFY_SOCKET), log:REGEX (ready when a line
// of its output matches the RE2 expression REGEX), or none.
func ParseProbe(s string) (Probe, error) {
	if s == ProbeNone || s == ProbeNotify {
		return Probe{Kind: s}, nil
	}
	if expr, ok := strings.CutPrefix(s, "log:"); ok {
		if expr == "" {
			return Probe{}, fmt.Errorf("probe %q: no regular expression after \"log:\"", s)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return Probe{}, fmt.Errorf("log probe %q: %w", s, err)
		}
		return Probe{Kind: ProbeLog, Target: expr, Regexp: re}, nil
	}
	if cmd, ok := strings.CutPrefix(s, "exec:"); ok {
		cmd = strings.TrimSpace(cmd)
		if cmd == "" {
			return Probe{}, fmt.Errorf("probe %q: no command after exec", s)
		}
		return Probe{Kind: ProbeExec, Target: cmd}, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return Probe{}, fmt.Errorf("bad probe %q: want tcp://HOST:PORT, http(s)://URL, file:///PATH, exec:CMD, log:REGEX, notify or none", s)
	}
	switch u.Scheme {
	case ProbeTCP:
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return Probe{}, fmt.Errorf("tcp probe %q: want tcp://HOST:PORT and nothing more", s)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" {
			return Probe{}, fmt.Errorf("tcp probe %q: want tcp://HOST:PORT", s)
		}
		if err := checkPort(port); err != nil {
			return Probe{}, fmt.Errorf("tcp probe %q: %w", s, err)
		}
		return Probe{Kind: ProbeTCP, Target: u.Host}, nil
	case ProbeHTTP, ProbeHTTPS:
		if u.Hostname() == "" {
			return Probe{}, fmt.Errorf("%s probe %q: no host", u.Scheme, s)
		}
		if port := u.Port(); port != "" {
			if err := checkPort(port); err != nil {
				return Probe{}, fmt.Errorf("%s probe %q: %w", u.Scheme, s, err)
			}
		}
		return Probe{Kind: u.Scheme, Target: s}, nil
	case ProbeFile:
		// file://host/path names a file on another machine: only an empty host makes sense here.
		if u.Host != "" || !path.IsAbs(u.Path) || u.RawQuery != "" || u.Fragment != "" {
			return Probe{}, fmt.Errorf("file probe %q: want file:///ABSOLUTE/PATH", s)
		}
		return Probe{Kind: ProbeFile, Target: u.Path}, nil
	}
	return Probe{}, fmt.Errorf("probe %q: unknown scheme %q: want tcp, http, https, file, exec:, log:, notify or none", s, u.Scheme)
}

// ParseHealth reads a health probe: what ParseProbe reads but log: and notify, which say once
// that a process came up and cannot be asked again whether it is still well.
func ParseHealth(s string) (Probe, error) {
	p, err := ParseProbe(s)
	switch {
	case err != nil:
		return Probe{}, err
	case p.Kind == ProbeLog:
		return Probe{}, errors.New("a log: probe is for ready only (a line is printed once, health is asked again and again): use a tcp://, http(s)://, file:// or exec: probe")
	case p.Kind == ProbeNotify:
		return Probe{}, errors.New("notify is for ready only: for liveness over sd_notify use watchdog")
	}
	return p, nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	return nil
}

// String is the probe as written in a config file; ParseProbe reads it back.
func (p Probe) String() string {
	switch p.Kind {
	case "", ProbeNone:
		return ProbeNone
	case ProbeTCP:
		return "tcp://" + p.Target
	case ProbeFile:
		return (&url.URL{Scheme: "file", Path: p.Target}).String()
	case ProbeExec:
		return "exec:" + p.Target
	case ProbeNotify:
		return ProbeNotify
	case ProbeLog:
		return "log:" + p.Target
	}
	return p.Target // http and https keep the whole URL
}

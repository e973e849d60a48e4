package signals

import (
	"fmt"
	"strings"
	"syscall"
)

// Rewrites maps a received signal to the one forwarded instead; a mapping to 0 drops the signal.
type Rewrites map[syscall.Signal]syscall.Signal

// ParseRewrites reads FROM:TO specs such as "TERM:QUIT" or "15:3" or "USR1:0"; a spec may hold
// several, comma-separated. A later spec for the same FROM replaces an earlier one.
func ParseRewrites(specs []string) (Rewrites, error) {
	out := Rewrites{}
	for _, spec := range specs {
		for _, one := range strings.Split(spec, ",") {
			from, to, err := parseRewrite(one)
			if err != nil {
				return nil, err
			}
			out[from] = to
		}
	}
	return out, nil
}

func parseRewrite(spec string) (from, to syscall.Signal, err error) {
	l, r, ok := strings.Cut(strings.TrimSpace(spec), ":")
	if !ok || l == "" || r == "" {
		return 0, 0, fmt.Errorf("bad rewrite %q: want FROM:TO, e.g. TERM:QUIT (TO 0 drops the signal)", spec)
	}
	if from, err = Parse(l); err != nil {
		return 0, 0, fmt.Errorf("bad rewrite %q: %w", spec, err)
	}
	if NeverForward(from) {
		return 0, 0, fmt.Errorf("bad rewrite %q: SIG%s is never forwarded", spec, Name(from))
	}
	if strings.TrimSpace(r) == "0" {
		return from, 0, nil
	}
	if to, err = Parse(r); err != nil {
		return 0, 0, fmt.Errorf("bad rewrite %q: %w", spec, err)
	}
	return from, to, nil
}

// Apply returns the signal to forward for sig, and false when it is dropped.
func (rw Rewrites) Apply(sig syscall.Signal) (syscall.Signal, bool) {
	to, ok := rw[sig]
	if !ok {
		return sig, true
	}
	return to, to != 0
}

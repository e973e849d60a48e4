package config

import (
	"syscall"
	"time"

	"gaffer/signals"
)

// health reads health and the keys that tune it.
func (d *decoder) health(p *Process, k keyPath, get func(string) (any, keyPath, bool)) {
	_, _, hasHealth := get("health")
	if !hasHealth {
		// The keys that tune the check mean nothing without one: most likely health itself was
		// misspelt or left out.
		for _, key := range []string{"health_interval", "health_timeout", "health_retries", "health_start", "on_unhealthy"} {
			if _, kk, ok := get(key); ok {
				d.errorf(kk, "%s without health", key)
			}
		}
		return
	}
	v, kk, _ := get("health")
	if s, ok := d.str(kk, v); ok {
		if probe, err := ParseHealth(s); err != nil {
			d.errorf(kk, "%v", err)
		} else {
			p.Health = probe
		}
	}
	positive := func(key string, dst *time.Duration) {
		if v, kk, ok := get(key); ok {
			if x, ok := d.duration(kk, v); ok {
				if x == 0 {
					d.errorf(kk, "%s must be longer than 0s", key)
					return
				}
				*dst = x
			}
		}
	}
	positive("health_interval", &p.HealthInterval)
	positive("health_timeout", &p.HealthTimeout)
	if v, kk, ok := get("health_start"); ok {
		if x, ok := d.duration(kk, v); ok {
			p.HealthStart = x
		}
	}
	if v, kk, ok := get("health_retries"); ok {
		if n, ok := d.atLeast(kk, v, 1); ok {
			p.HealthRetries = n
		}
	}
	if v, kk, ok := get("on_unhealthy"); ok {
		if o, ok := d.oneOf(kk, v, OnUnhealthyRestart, OnUnhealthyShutdown, OnUnhealthyIgnore); ok {
			p.OnUnhealthy = o
		}
	}
	if p.Health.Kind != ProbeNone && p.Detach {
		d.errorf(kk, "health with detach: a detached process is not supervised")
	}
}

// reloadSignal reads settings.reload_signal: a signal gaffer may take for itself. Not one that
// cannot be caught or that gaffer keeps (KILL, STOP, CHLD, URG, PIPE, the faults), not one that
// already stops gaffer (TERM, INT, QUIT), and not a terminal stop, which gaffer passes on.
func (d *decoder) reloadSignal(k keyPath, v any) (syscall.Signal, bool) {
	sig, ok := d.signal(k, v)
	if !ok {
		return 0, false
	}
	switch {
	case signals.Terminating(sig):
		d.errorf(k, "SIG%s stops gaffer: pick another signal, such as HUP or USR1", signals.Name(sig))
		return 0, false
	case signals.NeverForward(sig):
		d.errorf(k, "SIG%s cannot be a reload signal: gaffer cannot catch it or keeps it for itself", signals.Name(sig))
		return 0, false
	case signals.JobControl(sig):
		d.errorf(k, "SIG%s is a terminal stop, which gaffer passes on: pick another signal, such as HUP or USR1", signals.Name(sig))
		return 0, false
	}
	return sig, true
}

package config

import (
	"os"
	"slices"

	"gaffer/listen"
)

// systemd reads the keys of the systemd protocols: watchdog (sd_notify), listen, listen_names and
// listen_mode (socket activation).
func (d *decoder) systemd(p *Process, k keyPath, get func(string) (any, keyPath, bool)) {
	if v, kk, ok := get("watchdog"); ok {
		if w, ok := d.duration(kk, v); ok {
			switch {
			case w == 0:
				d.errorf(kk, "watchdog must be longer than 0s (leave it out for none)")
			case p.Detach:
				d.errorf(kk, "watchdog with detach: a detached process is not supervised")
			default:
				p.Watchdog = w
			}
		}
	}
	unixAddr, given := false, -1 // given: how many addresses listen holds, -1 when unknown
	if v, kk, ok := get("listen"); ok {
		if addrs, ok := d.strs(kk, v); ok {
			given = len(addrs)
			for i, s := range addrs {
				a, err := listen.Parse(s)
				switch {
				case err != nil:
					d.errorf(kk.index(i), "%v", err)
				case slices.Contains(p.Listen, a):
					d.errorf(kk.index(i), "%s is listed twice", a)
				default:
					p.Listen = append(p.Listen, a)
					unixAddr = unixAddr || a.Kind == listen.Unix
				}
			}
		}
	}
	if v, kk, ok := get("listen_names"); ok {
		if names, ok := d.strs(kk, v); ok && len(names) > 0 {
			good := true
			for i, n := range names {
				if !listen.ValidName(n) {
					d.errorf(kk.index(i), "bad name %q: 1 to 255 printable ASCII characters, no space or colon", n)
					good = false
				}
			}
			_, _, hasListen := get("listen")
			switch {
			case !hasListen:
				d.errorf(kk, "listen_names without listen")
			case given >= 0 && len(names) != given:
				d.errorf(kk, "%d names for %d listen addresses", len(names), given)
			case good:
				p.ListenNames = names
			}
		}
	}
	if v, kk, ok := get("listen_mode"); ok {
		mode := fileMode(v)
		switch {
		case mode < 0 || mode > 0o777:
			d.errorf(kk, "want a file mode like \"0660\" or 0o660, got %s", describe(v))
		case mode == 0:
			d.errorf(kk, "listen_mode 0000: only root could connect")
		case !unixAddr:
			d.errorf(kk, "listen_mode without a unix:// address in listen")
		default:
			p.ListenMode = os.FileMode(mode)
		}
	}
}

#!/bin/sh
# privrun.sh CMD [ARG...] runs CMD as PID 1 of a new PID and mount namespace with its own /proc and
# an empty /run, as a container gives it (see pid1env.sh): gaffer, as PID 1, then makes its API
# socket at /run/gaffer.sock as it does in a container. Every command of the PID-1 start-up set
# runs through it, the baseline /bin/true too.
exec unshare -p -f -m "$(dirname "$0")/pid1env.sh" "$@"

#!/bin/sh
# pid1env.sh CMD [ARG...], run as PID 1 of a new PID and mount namespace, gives it what a container
# has: mounts private to it, its own /proc, an empty tmpfs on /run (where gaffer, as PID 1, makes
# its API socket); then it becomes CMD, which stays PID 1. bench/privrun.sh makes the namespaces;
# bench/rss and bench/siglat make them with CLONE_NEWPID|CLONE_NEWNS and run this.
set -e
mount --make-rprivate /
mount -t proc proc /proc
mount -t tmpfs -o size=1m none /run
exec "$@"

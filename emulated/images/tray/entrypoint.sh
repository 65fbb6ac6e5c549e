#!/bin/sh
# Starts the tray's inner Docker daemon in the background and keeps sshd as the
# main process. sshd, not dockerd, is the main process so that a role that
# stops or restarts the inner daemon does not take the whole tray down.
set -eu
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
# After a tray restart the pid files of the previous boot are stale (and their
# pids may now belong to other processes), which would stop dockerd starting.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
# overlay2 works because /var/lib/docker is a volume (not overlay-on-overlay).
dockerd --storage-driver=overlay2 >>/var/log/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -e

#!/usr/bin/env bash
# Installs (as root, idempotently) the system packages the project and its tests need.
# `python`: what building the venv needs. `all`: plus the services the suite uses.
set -euo pipefail
what=${1:-all}
need=()
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need+=(python3-venv); fi
if [ "$what" = all ]; then
  # HA tests start private ZooKeeper servers from this package (no system service is used).
  if [ ! -x /usr/share/zookeeper/bin/zkServer.sh ]; then need+=(zookeeperd); fi
  # Docker engine + a static busybox for the agent's docker containerizer tests.
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  [ -x /bin/busybox ] || need+=(busybox-static)
  # mesos-local --secure and the TLS tests make throwaway certificates with it.
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  # The browser the web-UI tests drive through Playwright (its own downloads are not used).
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # Multi-host tests (tests/hosts): partitions and packet loss with iptables, clock skew with
  # libfaketime.
  command -v iptables >/dev/null 2>&1 || need+=(iptables)
  [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(faketime)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-system-deps: need root to install: ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run (a parallel job) may hold the lock: wait for it rather than fail.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}"
fi
if [ "$what" = all ]; then
  # dockerd (started once, detached) and the local test image corral/busybox:test.
  if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then echo "install-system-deps: need root to start dockerd" >&2; exit 1; fi
    # /var/run survives a machine's restart here: a pid file left by an earlier dockerd or its
    # containerd may name a pid now taken by another process, and dockerd then waits forever
    # for a containerd that is not there. No dockerd runs, so no pid file is live.
    if ! pgrep -x dockerd >/dev/null; then
      pkill -x containerd 2>/dev/null || true
      rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
    fi
    setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    if ! docker info >/dev/null 2>&1; then
      echo "install-system-deps: dockerd did not start; the end of /var/log/dockerd.log:" >&2
      grep -v 'module=grpc' /var/log/dockerd.log | tail -n 20 >&2 || true
      exit 1
    fi
  fi
  if ! docker image inspect corral/busybox:test >/dev/null 2>&1; then
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp" "$root/www"
    cp /bin/busybox "$root/bin/"
    for c in sh sleep echo cat httpd wget ls kill true false env; do ln -s busybox "$root/bin/$c"; done
    tar -C "$root" -c . | docker import - corral/busybox:test >/dev/null
    rm -rf "$root"
  fi
fi

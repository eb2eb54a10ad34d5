#!/usr/bin/env bash
# Installs (as root, idempotently) the system packages the project and its tests need.
# `python`: what building the venv needs. `all`: plus the services the suite uses.
set -euo pipefail
what=${1:-all}
need=()
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need+=(python3-venv); fi
if [ "$what" = all ]; then
  : # The foundation suite needs nothing beyond Python; Docker and ZooKeeper join here later.
  # HA tests start private ZooKeeper servers from this package (no system service is used).
  if [ ! -x /usr/share/zookeeper/bin/zkServer.sh ]; then need+=(zookeeperd); fi
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-system-deps: need root to install: ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  # Another apt run (a parallel job) may hold the lock: wait for it rather than fail.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}"
fi

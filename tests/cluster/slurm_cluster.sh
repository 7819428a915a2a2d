#!/usr/bin/env bash
# The local 2-node Slurm cluster of the cluster tests: munge, slurmctld and two slurmd (n1, n2)
# on 127.0.0.1 with private ports, every file under DIR, stopped by the PIDs in DIR.
#   tests/cluster/slurm_cluster.sh up DIR     # prints SLURM_CONF=DIR/slurm.conf when sinfo shows 2 idle nodes
#   tests/cluster/slurm_cluster.sh down DIR   # stops slurmd, slurmctld, then munged (if started here)
# Needs root (Debian's slurm-wlm and munge; installed with apt-get when missing).
set -euo pipefail
cmd=${1:?usage: slurm_cluster.sh up|down DIR}
dir=${2:?usage: slurm_cluster.sh up|down DIR}
here=$(cd "$(dirname "$0")" && pwd)
: "${SLURM_CTLD_PORT:=16817}" "${SLURM_NODE1_PORT:=16818}" "${SLURM_NODE2_PORT:=16819}"
#: seconds to wait for munged, the controller and the nodes
WAIT_S=${SLURM_WAIT_S:-60}

stop_pid() {  # stop_pid PIDFILE: SIGTERM the process named in PIDFILE, SIGKILL after 10 s
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

install_packages() {
  command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || { echo "slurm_cluster.sh: slurm-wlm and munge are missing; install them as root" >&2; exit 1; }
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
}

start_munge() {
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null;
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  if munge -n >/dev/null 2>&1; then return 0; fi  # a munged runs already: use it, do not own it
  su -s /bin/sh munge -c "munged --pid-file=/run/munge/zppo-test-munged.pid"
  cp /run/munge/zppo-test-munged.pid "$dir/munged.pid"
  for _ in $(seq 1 $((WAIT_S * 10))); do munge -n >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "slurm_cluster.sh: munged did not answer within ${WAIT_S}s" >&2; exit 1
}

up() {
  install_packages
  mkdir -p "$dir/log" "$dir/state"
  sed -e "s#@DIR@#$dir#g" -e "s/@CTLD_PORT@/$SLURM_CTLD_PORT/" -e "s/@NODE1_PORT@/$SLURM_NODE1_PORT/g" \
      -e "s/@NODE2_PORT@/$SLURM_NODE2_PORT/g" "$here/slurm.conf.in" > "$dir/slurm.conf"
  export SLURM_CONF="$dir/slurm.conf"
  start_munge
  slurmctld -c
  slurmd -N n1
  slurmd -N n2
  for _ in $(seq 1 $((WAIT_S * 2))); do
    if [ "$(sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l)" -eq 2 ]; then echo "SLURM_CONF=$SLURM_CONF"; return 0; fi
    sleep 0.5
  done
  echo "slurm_cluster.sh: the 2 nodes are not idle after ${WAIT_S}s (logs: $dir/log)" >&2
  down; exit 1
}

down() {
  stop_pid "$dir/slurmd-n1.pid"
  stop_pid "$dir/slurmd-n2.pid"
  stop_pid "$dir/slurmctld.pid"
  stop_pid "$dir/munged.pid"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  *) echo "usage: slurm_cluster.sh up|down DIR" >&2; exit 2 ;;
esac

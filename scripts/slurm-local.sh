#!/usr/bin/env bash
# A single-node Slurm cluster on this machine (munged, slurmctld, slurmd started by hand, no
# systemd), for lab's Slurm tests and for trying `lab sweep --launcher slurm` without a cluster.
# Needs root (or sudo) and Debian's packages; idempotent.
#   scripts/slurm-local.sh start     install if missing, start the daemons, wait for an idle node
#   scripts/slurm-local.sh stop      cancel every job, stop the daemons
# SLURM_BASE (default /tmp/slurm-local) holds state, spool and logs; SLURM_CONF is /etc/slurm/slurm.conf.
set -euo pipefail
base=${SLURM_BASE:-/tmp/slurm-local}
export SLURM_CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
log() { echo "[slurm-local] $*" >&2; }
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
# A pid counts as running unless it is gone or a zombie.
running() { local st; st=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null); [ -n "$st" ] && [ "$st" != Z ]; }
alive() { [ -s "$1" ] && running "$(cat "$1")"; }
wait_pid() { for _ in $(seq 1 100); do alive "$1" && return 0; sleep 0.1; done; log "no live pid in $1"; return 1; }
stop_pid() {
  local name=$1 pf=$2 pid
  alive "$pf" || { rm -f "$pf"; return 0; }
  pid=$(cat "$pf"); $sudo kill -TERM "$pid"
  for _ in $(seq 1 300); do running "$pid" || break; sleep 0.1; done
  running "$pid" && $sudo kill -KILL "$pid"
  rm -f "$pf"; log "$name stopped"
}

start() {
  local missing=0
  for b in slurmctld slurmd munged; do [ -x "/usr/sbin/$b" ] || missing=1; done
  command -v sbatch >/dev/null || missing=1
  if [ "$missing" = 1 ]; then
    log "installing slurmctld slurmd slurm-client munge"
    # Keep the packages' scripts from starting services.
    local policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
      $sudo chmod +x /usr/sbin/policy-rc.d; policy=1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null
    [ "$policy" = 1 ] && $sudo rm -f /usr/sbin/policy-rc.d
  fi
  # munge: a key owned by munge, private directories, the daemon.
  if [ ! -s /etc/munge/munge.key ]; then
    $sudo mkdir -p /etc/munge
    $sudo dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  $sudo mkdir -p /run/munge /var/lib/munge /var/log/munge
  $sudo chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  $sudo chmod 0700 /etc/munge; $sudo chmod 0600 /etc/munge/munge.key; $sudo chmod 0755 /run/munge
  if ! alive /run/munge/munged.pid; then
    $sudo rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    $sudo runuser -u munge -- /usr/sbin/munged
    wait_pid /run/munge/munged.pid
  fi
  for _ in $(seq 1 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
  # The configuration: this host as the only node, one partition, finished jobs kept an hour.
  local host cpus mem
  host=$(hostname -s 2>/dev/null || uname -n); host=${host%%.*}
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2/1024) - 512}' /proc/meminfo)
  $sudo mkdir -p "$base"/{ctld,d,log} "$(dirname "$SLURM_CONF")"
  $sudo tee "$SLURM_CONF.new" >/dev/null <<CONF
# Written by lab's scripts/slurm-local.sh: a single-node cluster, no systemd, no cgroups.
ClusterName=local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${base}/log/jobcomp.txt
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
MaxArraySize=10001
KillWait=5
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=${base}/slurmctld.pid
SlurmdPidFile=${base}/slurmd.pid
StateSaveLocation=${base}/ctld
SlurmdSpoolDir=${base}/d
SlurmctldLogFile=${base}/log/slurmctld.log
SlurmdLogFile=${base}/log/slurmd.log
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  if ! cmp -s "$SLURM_CONF.new" "$SLURM_CONF"; then
    $sudo mv "$SLURM_CONF.new" "$SLURM_CONF"
    stop_pid slurmd "$base/slurmd.pid"; stop_pid slurmctld "$base/slurmctld.pid"
  else
    $sudo rm -f "$SLURM_CONF.new"
  fi
  [ -f "$(dirname "$SLURM_CONF")/gres.conf" ] || $sudo touch "$(dirname "$SLURM_CONF")/gres.conf"
  alive "$base/slurmctld.pid" || { $sudo /usr/sbin/slurmctld -f "$SLURM_CONF"; wait_pid "$base/slurmctld.pid"; }
  alive "$base/slurmd.pid" || { $sudo /usr/sbin/slurmd -f "$SLURM_CONF"; wait_pid "$base/slurmd.pid"; }
  local deadline=$(( $(date +%s) + ${SLURM_WAIT_S:-60} )) st
  while :; do
    st=$(sinfo -h -N -n "$host" -o %t 2>/dev/null || true)
    case "$st" in
      idle|mix|alloc) break ;;
      down*|drain*|drng*|fail*) $sudo scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "node did not become idle (state '$st')"
      tail -n 20 "$base/log/slurmctld.log" "$base/log/slurmd.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  log "node $host is $st (partition debug, $cpus CPUs)"
}

stop() {
  if alive "$base/slurmctld.pid"; then
    ids=$(squeue -h -o %F 2>/dev/null | sort -u)
    [ -n "$ids" ] && { scancel $ids 2>/dev/null || true; }
    for _ in $(seq 1 200); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  stop_pid slurmd "$base/slurmd.pid"
  stop_pid slurmctld "$base/slurmctld.pid"
  stop_pid munged /run/munge/munged.pid
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

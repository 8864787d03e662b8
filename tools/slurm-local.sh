#!/usr/bin/env bash
# A one-node Slurm on this machine (Debian's slurm-wlm and munge), for trying
# the batch scripts in jobs/ and for the requeue test.
#
#   tools/slurm-local.sh start    # prints the SLURM_CONF to export
#   tools/slurm-local.sh stop
#   tools/slurm-local.sh status
#
# State, logs and the configuration live in $SLR_SLURM_DIR (default
# /tmp/slr-slurm). Needs root (it starts munged, slurmctld and slurmd).
set -euo pipefail
dir="${SLR_SLURM_DIR:-/tmp/slr-slurm}"
conf="$dir/slurm.conf"
cmd="${1:-status}"

install_packages() {
  local missing=()
  for p in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge
  chmod 0400 /etc/munge/munge.key
  chmod 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "slurm-local: munged did not start" >&2
  exit 1
}

write_conf() {
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  local cpus mem
  cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it follows OMP_NUM_THREADS
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
  cat > "$conf" <<CONF
ClusterName=slrlocal
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SlurmUser=root
SlurmdUser=root
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ReturnToService=2
MpiDefault=none
KillWait=30
MinJobAge=600
SchedulerType=sched/backfill
JobRequeue=1
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}

case "$cmd" in
  start)
    install_packages
    start_munge
    if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
      echo "slurm-local: already running"
    elif pgrep -x slurmctld > /dev/null || pgrep -x slurmd > /dev/null; then
      echo "slurm-local: another slurmctld or slurmd runs on this machine (not from $dir); stop it first" >&2
      exit 1
    else
      write_conf
      export SLURM_CONF="$conf"
      slurmctld -f "$conf"
      slurmd -f "$conf"
      for _ in $(seq 100); do
        if sinfo -h -o %t 2>/dev/null | grep -q idle; then break; fi
        sleep 0.2
      done
      sinfo -h -o %t | grep -q idle || { echo "slurm-local: the node did not come up; see $dir/log" >&2; exit 1; }
    fi
    echo "export SLURM_CONF=$conf"
    ;;
  stop)
    for p in slurmd slurmctld; do
      [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    done
    sleep 1
    echo "slurm-local: stopped"
    ;;
  status)
    SLURM_CONF="$conf" sinfo 2>/dev/null || echo "slurm-local: not running"
    ;;
  *) echo "usage: tools/slurm-local.sh start|stop|status" >&2; exit 2 ;;
esac

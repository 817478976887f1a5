#!/usr/bin/env bash
# Brings up a real single-node Slurm cluster on this machine, idempotently, for the Slurm executor's
# tests (test/slurm-*.test.ts) and for trying `metadd run --executor slurm` locally:
#   - installs slurm-wlm and munge from Debian if missing (needs root and apt),
#   - writes /etc/slurm/slurm.conf for this host (only rewritten when its content changes),
#   - starts munged, slurmctld and slurmd unless they already run (no systemd needed),
#   - waits until `sinfo` shows the node idle, or fails saying what is wrong.
# Re-running with everything up does nothing but the checks. Works without systemd (containers, CI).
#
# Monitoring choice (see docs/cluster.md): no accounting database, so `sacct` has no data. The
# executor reads job states from `squeue --states=all` and `scontrol show job`, which keep finished
# jobs for MinJobAge seconds (raised to an hour here), and treats the store as the final word on
# success. jobcomp/filetxt keeps a plain log of every finished job for humans.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
WAIT_S="${METADD_SLURM_WAIT_S:-180}"

die() {
  echo "setup-slurm: $*" >&2
  exit 1
}
say() { echo "setup-slurm: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts the Slurm daemons)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || die "slurm-wlm and munge are missing and there is no apt-get to install them"
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# --- munge -------------------------------------------------------------------------------------
# The package's postinst creates the key; a key lost (or an image built without postinst) is made here.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  say "creating /etc/munge/munge.key"
  if command -v mungekey >/dev/null; then mungekey --create --force >/dev/null; else dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; fi
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  # A pid/socket left by a killed munged makes the new one refuse to start.
  if [ -f /run/munge/munged.pid ] && ! kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  fi
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.2
  done
  munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- slurm.conf --------------------------------------------------------------------------------
HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
# slurmd drains a node that has less memory than configured, so stay below what is really there.
REAL_MEM=$((MEM_MB * 9 / 10))
[ "$REAL_MEM" -gt 20000 ] && REAL_MEM=20000
DEF_MEM=$((REAL_MEM / CPUS / 2))
[ "$DEF_MEM" -gt 1000 ] && DEF_MEM=1000

mkdir -p "$CONF_DIR" "$LOG_DIR" "$RUN_DIR" /var/spool/slurmctld /var/spool/slurmd
desired="$(cat <<EOF
# Written by metadd scripts/setup-slurm.sh: a single-node cluster on $HOST. Re-run the script to update.
ClusterName=metadd
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SchedulerType=sched/backfill
SelectType=select/cons_tres
# Cores and memory are the consumable resources, so several 1-CPU jobs share the node. Without a
# default memory per CPU a job without --mem would be given the whole node and run alone.
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM
# No accounting database (sacct has no data). Finished jobs stay visible to squeue --states=all and
# scontrol for an hour, which is what the metadd executor reads; jobcomp keeps a text log of them.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
MinJobAge=3600
# Short timers: a test cluster should notice a finished or killed job within seconds.
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$HOST CPUs=$CPUS RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)"

conf_changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$desired" ]; then
  say "writing $CONF"
  printf '%s\n' "$desired" >"$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
  conf_changed=1
fi
# Some Debian builds look in /etc/slurm-llnl; point it at the same file.
if [ -d /etc/slurm-llnl ] && [ ! -e /etc/slurm-llnl/slurm.conf ]; then ln -s "$CONF" /etc/slurm-llnl/slurm.conf; fi

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_daemon() {
  local pidfile="$1" name="$2"
  if pid_alive "$pidfile"; then
    local pid
    pid="$(cat "$pidfile")"
    say "stopping $name (pid $pid) to load the new configuration"
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) did not stop"
  fi
  rm -f "$pidfile"
}

if [ "$conf_changed" = 1 ]; then
  stop_daemon "$RUN_DIR/slurmd.pid" slurmd
  stop_daemon "$RUN_DIR/slurmctld.pid" slurmctld
fi

if ! pid_alive "$RUN_DIR/slurmctld.pid"; then
  say "starting slurmctld"
  slurmctld || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
fi
for _ in $(seq 1 60); do
  scontrol ping 2>/dev/null | grep -q 'UP' && break
  sleep 0.5
done
scontrol ping 2>/dev/null | grep -q 'UP' || die "slurmctld does not answer (see $LOG_DIR/slurmctld.log)"

if ! pid_alive "$RUN_DIR/slurmd.pid"; then
  say "starting slurmd"
  slurmd || die "slurmd did not start (see $LOG_DIR/slurmd.log)"
fi

# --- wait for the node ---------------------------------------------------------------------------
say "waiting for node $HOST to become idle (up to ${WAIT_S}s)"
start=$(date +%s)
state=""
resumed=0
while :; do
  state="$(sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | head -n1 || true)"
  case "$state" in
    idle | mixed | allocated | completing) break ;;
    # A node drained or down from an earlier configuration (e.g. less memory) comes back once.
    down* | drain* | drained*)
      if [ "$resumed" = 0 ] && pid_alive "$RUN_DIR/slurmd.pid"; then
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
        resumed=1
      fi
      ;;
  esac
  if [ $(($(date +%s) - start)) -ge "$WAIT_S" ]; then
    reason="$(sinfo -h -R -n "$HOST" -o '%E' 2>/dev/null || true)"
    die "node $HOST is '${state:-unknown}' after ${WAIT_S}s${reason:+ (reason: $reason)}; see $LOG_DIR/slurmd.log and $LOG_DIR/slurmctld.log"
  fi
  sleep 2
done
say "cluster up in $(($(date +%s) - start))s: node $HOST $state, $CPUS CPUs, ${REAL_MEM} MB"

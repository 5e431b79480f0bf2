#!/usr/bin/env bash
# A throwaway single-node Slurm cluster on this machine, for testing the
# forkswap Slurm scripts: munged, slurmctld and slurmd, each started in the
# foreground in the background with its PID recorded, all state, logs,
# sockets and the munge key under one directory, its own slurm.conf
# (proctrack/linuxproc and task/none: no cgroups needed; one node with this
# machine's CPUs; no accounting database). Runs as root (SlurmUser=root).
#
#   local-cluster.sh start DIR   start it; prints `export SLURM_CONF=DIR/slurm.conf`
#   local-cluster.sh stop DIR    stop the daemons that `start DIR` started, by PID
#   local-cluster.sh status DIR  sinfo and squeue of it
#
# Ports: FORKSWAP_SLURM_PORT (default 16817) for slurmctld and the next one
# for slurmd; pick others if those are taken. Packages: scripts/slurm/install.sh.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

# Cancels the cluster's jobs, then stops every daemon recorded in DIR/pids
# that still runs under its name (TERM, then KILL after 10 s).
stop() {
    [ -f "$dir/pids" ] || return 0
    if [ -f "$dir/slurm.conf" ] && [ -n "$(SLURM_CONF=$dir/slurm.conf squeue -h 2>/dev/null)" ]; then
        SLURM_CONF=$dir/slurm.conf scancel --full --user=root 2>/dev/null || true
        for _ in $(seq 20); do
            [ -z "$(SLURM_CONF=$dir/slurm.conf squeue -h 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    local pids="" name pid
    while read -r name pid; do
        # Only our daemon: a PID reused by another process is left alone.
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && pids="$pids $pid"
    done <"$dir/pids"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 100); do
        local alive=0
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    rm -f "$dir/pids"
    echo "local Slurm cluster in $dir stopped (PIDs${pids:- none})" >&2
}

# Starts "$@" in the background and records its PID under the name $1.
spawn() {
    local name=$1
    shift
    "$@" >>"$dir/log/$name.out" 2>&1 &
    echo "$name $!" >>"$dir/pids"
}

case "$cmd" in
stop)
    stop
    exit 0
    ;;
status)
    export SLURM_CONF=$dir/slurm.conf
    sinfo
    squeue
    exit 0
    ;;
start) ;;
*) usage ;;
esac

if [ -f "$dir/pids" ]; then
    echo "error: $dir/pids exists: a cluster may be running there; run: $0 stop $dir" >&2
    exit 1
fi
bash "$(dirname "$0")/install.sh"

port=${FORKSWAP_SLURM_PORT:-16817}
node=$(hostname -s)
cpus=$(nproc)
mkdir -p "$dir"/{munge,state,spool,log}
chmod 700 "$dir" "$dir/munge"
dir=$(cd "$dir" && pwd)
trap 'echo "error: the local Slurm cluster did not start; logs in $dir/log" >&2; stop' ERR

# munge: a fresh key, its own socket (slurm.conf's AuthInfo points there).
sock=$dir/munge/munge.socket
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
# --force: the temp directory's parents (/tmp) are world-writable.
spawn munged munged --foreground --force --socket="$sock" \
    --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
for _ in $(seq 50); do
    [ -S "$sock" ] && break
    sleep 0.1
done
[ -S "$sock" ] || {
    echo "error: munged did not create $sock" >&2
    false
}

cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm/local-cluster.sh: a single-node test cluster.
ClusterName=forkswap-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=forkswap Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$dir/slurm.conf

spawn slurmctld slurmctld -D -i -f "$SLURM_CONF"
spawn slurmd slurmd -D -f "$SLURM_CONF" -N "$node"

# Ready when the node is idle (bounded: 60 s).
for _ in $(seq 120); do
    state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.5
done
if [ "$state" != idle ]; then
    echo "error: node $node is '${state:-unknown}', not idle, after 60 s" >&2
    tail -n 5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    false
fi
trap - ERR
echo "local Slurm cluster up in $dir: node $node with $cpus CPUs; daemons $(cut -d' ' -f2 "$dir/pids" | tr '\n' ' ')" >&2
echo "export SLURM_CONF=$SLURM_CONF"

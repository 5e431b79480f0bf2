#!/usr/bin/env bash
# The Slurm test on a real engine (a CI step of .ci/run): starts a
# single-node Slurm cluster on this machine (scripts/slurm/local-cluster.sh:
# munged, slurmctld, slurmd), runs a 3-shard compare campaign through
# scripts/slurm/campaign.sh (a 3-task array and the merge job after it),
# runs the same plan on this machine without Slurm, with the same kernel and
# runner, and checks (scripts/slurm/check-campaign.py) that the 3 array
# tasks ran their shards under slurmd and that the merged report is the
# single run's plan: the same boots, seeds and variants, with summaries
# computed from its boots. Prints both wall times. Stops the daemons it
# started, by PID, whatever happens. About a minute on 2 idle cores.
#
# Needs root (it installs slurm and munge when missing, see install.sh).
# FORKSWAP_SLURM_TIMEOUT: seconds to wait for the campaign (default 600).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
timeout=${FORKSWAP_SLURM_TIMEOUT:-600}
shards=3
plan=(--variants "baseline,swap-prealloc" --boots 3 --seconds 0.5 --cpus 2)

bash scripts/slurm/install.sh
bash scripts/install-qemu.sh
work=$(mktemp -d /tmp/forkswap-slurm-test-XXXXXX)
cluster=$work/cluster
cleanup() {
    bash scripts/slurm/local-cluster.sh stop "$cluster" || true
    if [ "${keep:-0}" = 1 ]; then
        echo "slurm test: kept $work for a look" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
keep=1

echo "slurm test: building the kernel and the runner" >&2
kernel=$(cargo xtask build)
cargo build -q -p runner
runner=${CARGO_TARGET_DIR:-$root/target}/debug/runner

conf_line=$(bash scripts/slurm/local-cluster.sh start "$cluster")
eval "$conf_line"
export SLURM_CONF

# The campaign, timed from submission to the merged report.
t0=$(date +%s.%N)
ids=$(FORKSWAP_KERNEL=$kernel bash scripts/slurm/campaign.sh --shards "$shards" \
    --out "$work/campaign" -- "${plan[@]}")
array=$(sed -n 's/.*compare=\([0-9]*\).*/\1/p' <<<"$ids")
merge=$(sed -n 's/.*merge=\([0-9]*\).*/\1/p' <<<"$ids")
[ -n "$array" ] && [ -n "$merge" ] || {
    echo "slurm test: FAILED: campaign.sh printed '$ids'" >&2
    exit 1
}
state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
deadline=$(($(date +%s) + timeout))
while :; do
    s=$(state "$merge")
    case "$s" in
    PENDING | RUNNING | CONFIGURING | COMPLETING | "") ;;
    *) break ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "slurm test: FAILED: the merge job $merge is still ${s:-unknown} after $timeout s" >&2
        squeue >&2 || true
        scancel "$array" "$merge" || true
        exit 1
    fi
    sleep 0.5
done
t1=$(date +%s.%N)
if [ "$s" != COMPLETED ]; then
    echo "slurm test: FAILED: the merge job $merge ended $s" >&2
    scontrol show job "$array" >&2 || true
    tail -n 20 "$work"/campaign/logs/* >&2 || true
    exit 1
fi
# Every array task completed under slurmd, as task 1..3 of the array.
tasks=$(scontrol show job "$array" | grep -o "ArrayTaskId=[0-9]* " | sort | tr -d ' ' | tr '\n' ' ')
done_tasks=$(scontrol show job "$array" | grep -c "JobState=COMPLETED" || true)
echo "slurm test: array job $array ran ${tasks}(${done_tasks} COMPLETED), merge job $merge COMPLETED" >&2
if [ "$tasks" != "ArrayTaskId=1 ArrayTaskId=2 ArrayTaskId=3 " ] || [ "$done_tasks" != "$shards" ]; then
    echo "slurm test: FAILED: expected array tasks 1-3, all COMPLETED" >&2
    exit 1
fi

# The same plan on this machine, same runner and kernel image.
t2=$(date +%s.%N)
"$runner" --kernel "$work/campaign/bin/kernel" compare "${plan[@]}" \
    --json "$work/single.json" >"$work/single.out" 2>&1 || {
    echo "slurm test: FAILED: the single-machine run failed:" >&2
    cat "$work/single.out" >&2
    exit 1
}
t3=$(date +%s.%N)
# The merged report merged again alone: its summaries computed from its boots.
"$runner" merge "$work/campaign/merged.json" --json "$work/remerged.json" >/dev/null 2>&1
python3 scripts/slurm/check-campaign.py "$work/campaign" "$work/single.json" \
    "$work/remerged.json" "$shards" "$array"

# The checks can fail: a single run of another plan (seed base), or with
# one boot of another seed, must be refused.
for edit in 'r["seed_base"] = "0x2"' 'r["boots"][0]["seed"] = "0x9"'; do
    python3 -c "import json, sys
r = json.load(open(sys.argv[1]))
$edit
json.dump(r, open(sys.argv[2], 'w'))" "$work/single.json" "$work/other.json"
    if python3 scripts/slurm/check-campaign.py "$work/campaign" "$work/other.json" \
        "$work/remerged.json" "$shards" "$array" >"$work/other.out"; then
        echo "slurm test: FAILED: the check accepted a single run with $edit" >&2
        exit 1
    fi
    echo "ok    refused: a single run with $edit ($(grep FAIL "$work/other.out"))"
done

awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
    printf "slurm test: wall time of the plan (2 variants x 3 boots x 0.5 s, 2 vCPUs): " \
        "3-shard Slurm campaign %.1f s (submission to merged report), one machine %.1f s\n",
        b - a, d - c }'
keep=0
echo "slurm test: passed"

#!/usr/bin/env bash
# Runs a forkswap compare campaign on a Slurm cluster: builds the kernel
# and the runner once, copies both into the campaign directory (so that
# every shard boots the same image, whatever happens to the work tree
# meanwhile), submits the compare array (scripts/slurm/compare.sbatch, one
# task per shard) and the merge job (scripts/slurm/merge.sbatch) that
# depends on it (--dependency=afterok), and prints their job ids.
#
#   scripts/slurm/campaign.sh --shards N --out DIR [--sbatch-arg ARG]... [--] COMPARE-ARGS...
#
#   --shards N        array tasks (shards of the plan), 1 to 10000
#   --out DIR         campaign directory on a file system every node sees:
#                     bin/ (runner, kernel), shards/shard-I.json, logs/,
#                     merged.json (written by the merge job)
#   --sbatch-arg ARG  passed to both sbatch calls (e.g. --partition=lab,
#                     --time=02:00:00, --account=x); repeat for several
#   COMPARE-ARGS      `cargo xtask compare` options (not --shard/--json),
#                     e.g. --variants all --boots 100 --seconds 5 --cpus 4
#
# Each task asks for --cpus-per-task = jobs × cpus (the compare's --jobs,
# default 1 here, and --cpus, default 4) so that its QEMUs' vCPUs do not
# share cores with another task's. Output: human lines on stderr, then one
# line on stdout: `compare=<array job id> merge=<job id> merged=<path>`.
# FORKSWAP_KERNEL=PATH uses that image instead of building one.
set -euo pipefail

usage() {
    echo "usage: $0 --shards N --out DIR [--sbatch-arg ARG]... [--] COMPARE-ARGS..." >&2
    exit 2
}
root=$(cd "$(dirname "$0")/../.." && pwd)
shards="" out=""
sbatch_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --shards) shards=${2:-}; shift 2 || usage ;;
    --out) out=${2:-}; shift 2 || usage ;;
    --sbatch-arg) sbatch_args+=("${2:-}"); shift 2 || usage ;;
    --) shift; break ;;
    *) break ;;
    esac
done
[[ "$shards" =~ ^[1-9][0-9]*$ ]] && [ "$shards" -le 10000 ] || {
    echo "error: --shards must be 1 to 10000, not '$shards'" >&2
    exit 2
}
[ -n "$out" ] || usage
compare_args=("$@")

# The compare's --cpus and --jobs decide the CPUs of a task; --shard and
# --json are the scripts' business.
cpus=4 jobs=""
for ((i = 0; i < ${#compare_args[@]}; i++)); do
    a=${compare_args[i]}
    case "$a" in
    --cpus) cpus=${compare_args[i + 1]:-} ;;
    --cpus=*) cpus=${a#--cpus=} ;;
    --jobs) jobs=${compare_args[i + 1]:-} ;;
    --jobs=*) jobs=${a#--jobs=} ;;
    --shard | --shard=* | --shards | --shards=* | --json | --json=*)
        echo "error: $a is set by the Slurm scripts (--shard auto, --json per task)" >&2
        exit 2
        ;;
    esac
done
[[ "$cpus" =~ ^[1-9][0-9]*$ ]] || { echo "error: --cpus '$cpus' is not a number" >&2; exit 2; }
if [ -z "$jobs" ]; then
    jobs=1
    compare_args+=(--jobs 1)
fi
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "error: --jobs '$jobs' is not a number" >&2; exit 2; }
command -v sbatch >/dev/null || {
    echo "error: sbatch not found: run this on a Slurm submit host" >&2
    exit 3
}

mkdir -p "$out"/{bin,shards,logs}
out=$(cd "$out" && pwd)
if compgen -G "$out/shards/*.json" >/dev/null || [ -e "$out/merged.json" ]; then
    echo "error: $out already holds a campaign (shards/ or merged.json): use a new --out" >&2
    exit 2
fi

# One kernel image and one runner for every shard.
cd "$root"
if [ -n "${FORKSWAP_KERNEL:-}" ]; then
    kernel=$FORKSWAP_KERNEL
else
    echo "building the kernel (cargo xtask build)" >&2
    kernel=$(cargo xtask build)
fi
runner=${CARGO_TARGET_DIR:-$root/target}/debug/runner
cargo build -q -p runner
cp "$kernel" "$out/bin/kernel.tmp" && mv "$out/bin/kernel.tmp" "$out/bin/kernel"
cp "$runner" "$out/bin/runner.tmp" && mv "$out/bin/runner.tmp" "$out/bin/runner"

export FORKSWAP_OUT=$out FORKSWAP_RUNNER=$out/bin/runner FORKSWAP_KERNEL=$out/bin/kernel
array=$(sbatch --parsable "${sbatch_args[@]}" --array="1-$shards" \
    --cpus-per-task=$((cpus * jobs)) --output="$out/logs/compare-%A_%a.out" \
    --export=ALL,FORKSWAP_OUT,FORKSWAP_RUNNER,FORKSWAP_KERNEL \
    "$root/scripts/slurm/compare.sbatch" "${compare_args[@]}")
array=${array%%;*}
merge=$(sbatch --parsable "${sbatch_args[@]}" --dependency="afterok:$array" \
    --kill-on-invalid-dep=yes --output="$out/logs/merge-%j.out" \
    --export=ALL,FORKSWAP_OUT,FORKSWAP_RUNNER,FORKSWAP_KERNEL \
    "$root/scripts/slurm/merge.sbatch")
merge=${merge%%;*}
echo "submitted: compare array job $array (tasks 1-$shards, $((cpus * jobs)) CPU(s) each)," \
    "merge job $merge after it; results in $out (squeue -j $array,$merge)" >&2
echo "compare=$array merge=$merge merged=$out/merged.json"

#!/usr/bin/env bash
# Installs a single-node Slurm (slurmctld, slurmd, the client commands) and
# munge from Debian's packages, only when missing, the way
# scripts/install-qemu.sh installs QEMU. Used by scripts/slurm/test.sh.
# Tries the install first; if that fails (stale package lists), runs
# `apt-get update` and tries again.
set -euo pipefail

missing=0
for c in slurmctld slurmd sbatch squeue scontrol munged mungekey; do
    command -v "$c" >/dev/null 2>&1 || missing=1
done
[ "$missing" -eq 0 ] && exit 0

pkgs=(slurmctld slurmd slurm-client munge)
if [ "${EUID:-$(id -u)}" -ne 0 ]; then
    echo "error: Slurm or munge is missing; run: sudo apt-get update && sudo apt-get install -y ${pkgs[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: Slurm or munge is missing and apt-get is not available; install ${pkgs[*]} with your package manager" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing Slurm: apt-get install -y ${pkgs[*]}" >&2
if ! apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2; then
    echo "apt-get install failed: running apt-get update and retrying" >&2
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2
fi
for c in slurmctld slurmd sbatch squeue scontrol munged; do
    command -v "$c" >/dev/null 2>&1 || {
        echo "error: the Slurm packages were installed but $c is not on PATH" >&2
        exit 1
    }
done

#!/usr/bin/env bash
# Installs QEMU for x86_64 (qemu-system-x86_64) from Debian's packages.
# Used by `cargo xtask` when qemu-system-x86_64 is missing, and by .ci/run.
# Tries the install first; if that fails (stale package lists), runs
# `apt-get update` and tries again.
set -euo pipefail

if command -v qemu-system-x86_64 >/dev/null 2>&1; then
    exit 0
fi
if [ "${EUID:-$(id -u)}" -ne 0 ]; then
    echo "error: qemu-system-x86_64 is missing; run: sudo apt-get update && sudo apt-get install -y qemu-system-x86" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: qemu-system-x86_64 is missing and apt-get is not available; install QEMU (qemu-system-x86) with your package manager" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing QEMU: apt-get install -y qemu-system-x86" >&2
if ! apt-get install -y -q qemu-system-x86 >&2; then
    echo "apt-get install failed: running apt-get update and retrying" >&2
    apt-get update -q >&2
    apt-get install -y -q qemu-system-x86 >&2
fi
command -v qemu-system-x86_64 >/dev/null 2>&1 || {
    echo "error: qemu-system-x86 was installed but qemu-system-x86_64 is not on PATH" >&2
    exit 1
}

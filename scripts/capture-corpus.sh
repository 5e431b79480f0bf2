#!/usr/bin/env bash
# Captures real kernel consoles for the runner's seed corpus
# (runner/tests/corpus/real-*.console): QEMU's stdout bytes exactly as the
# runner would read them, with the contract's QEMU command line (microvm,
# TCG, 2 CPUs). Prints one MANIFEST line per capture (file, how QEMU ended);
# the verdict column is filled in by hand after checking each console.
#
# usage: scripts/capture-corpus.sh KERNEL OUTDIR
# Every QEMU runs under `timeout` (at most 3 s), so none is left behind.
set -euo pipefail
kernel=${1:?usage: capture-corpus.sh KERNEL OUTDIR}
out=${2:?usage: capture-corpus.sh KERNEL OUTDIR}
mkdir -p "$out"
disk=$(mktemp -d)
trap 'rm -rf "$disk"' EXIT
truncate -s 64M "$disk/swap.img"

capture() { # name seconds append [nodisk]
    local name=$1 secs=$2 append=$3 drive=()
    if [ "${4:-}" != nodisk ]; then
        drive=(-drive "id=swap,file=$disk/swap.img,format=raw,if=none,cache=unsafe"
               -device virtio-blk-device,drive=swap)
    fi
    local status=0
    timeout -k 1 "$secs" qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off \
        -accel tcg,thread=multi -cpu max -smp 2 -m 256 -nodefaults -no-user-config \
        -display none -serial stdio -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$kernel" -append "$append" "${drive[@]}" \
        >"$out/real-$name.console" 2>/dev/null </dev/null || status=$?
    if [ "$status" -eq 124 ]; then
        echo "real-$name.console timeout"
    else
        echo "real-$name.console status=$status"
    fi
}

capture probe 3 "mode=probe"
capture tests 3 "mode=tests expect_cpus=2"
capture stress-clean 3 "mode=stress variant=swap-prealloc seed=0x1 duration_ms=300"
capture diskbench 3 "mode=diskbench mib=4"
capture panic 3 "mode=crash kind=panic"
capture pagefault 3 "mode=crash kind=pagefault"
capture stackoverflow 3 "mode=crash kind=stackoverflow"
capture triplefault 3 "mode=crash kind=triplefault"
capture hang 1 "mode=crash kind=hang"
capture garbage 1 "mode=crash kind=garbage"
capture early-exit 3 "mode=crash kind=early-exit"
capture cut 3 "mode=crash kind=cut"
capture disk-missing 3 "mode=stress variant=baseline seed=0x1 duration_ms=300" nodisk
capture bad-mode 3 "mode=nonsense"

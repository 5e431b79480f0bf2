#!/usr/bin/env bash
# Builds the forkswap container image (deploy/Dockerfile): the kernel image
# (`cargo xtask build`) and the runner (release) built here, copied into a
# temporary build context, then `docker build -t TAG`. Push TAG to a
# registry your cluster pulls from and set it as `image:` in deploy/k8s/.
#
#   deploy/build-image.sh TAG
set -euo pipefail
[ $# -eq 1 ] || {
    echo "usage: $0 TAG" >&2
    exit 2
}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kernel=$(cargo xtask build)
cargo build -q --release -p runner
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$kernel" "$ctx/kernel"
cp "${CARGO_TARGET_DIR:-$root/target}/release/runner" "$ctx/runner"
docker build -t "$1" -f deploy/Dockerfile "$ctx"
echo "built $1 (kernel sha256 $(sha256sum "$ctx/kernel" | cut -d' ' -f1))" >&2

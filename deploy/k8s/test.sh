#!/usr/bin/env bash
# Checks the Kubernetes manifests as far as this machine allows (a CI step
# of .ci/run). There is no Kubernetes cluster here and the image is not
# built (no Docker daemon, no base images to pull), so:
#  1. schema: `kubernetes-validate --strict` (PyPI; ships the Kubernetes
#     OpenAPI schemas, works offline) on every manifest, and on broken
#     copies that it must refuse (so that a pass means something);
#  2. fit: deploy/k8s/manifests.py check (Indexed Job, FORKSWAP_SHARDS =
#     completions, one claim, one image, explicit accelerator);
#  3. the pods' shell lines: each shard pod's command line from
#     compare-job.yaml run here as the Job controller would start it
#     (JOB_COMPLETION_INDEX=0..completions-1, FORKSWAP_SHARDS from the
#     manifest), with the image's paths mapped to this build and a tiny
#     plan in place of the manifest's, then merge-job.yaml's command line;
#     the merged report must cover the plan.
# When kubernetes-validate (and with it PyYAML) cannot be installed, every
# step is skipped with a line saying so (step 3 reads the manifests with
# PyYAML). The validator lives in its own virtualenv,
# FORKSWAP_K8S_VENV (default ~/.cache/forkswap/k8s-venv).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
k8s=deploy/k8s

# kubernetes-validate in a virtualenv of its own (whichever python3 this
# is, pyenv's or Debian's with its externally managed packages).
venv=${FORKSWAP_K8S_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/forkswap/k8s-venv}
py=$venv/bin/python
validator=1
if ! "$py" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
    echo "k8s test: installing kubernetes-validate (PyPI) into $venv" >&2
    if ! { python3 -m venv "$venv" && "$py" -m pip install -q kubernetes-validate; } >&2; then
        validator=0
    fi
    "$py" -c 'import kubernetes_validate, yaml' 2>/dev/null || validator=0
fi
validate() { "$py" -m kubernetes_validate "$@"; }
work=$(mktemp -d /tmp/forkswap-k8s-test-XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "$validator" = 1 ]; then
    validate --strict --quiet "$k8s"/*.yaml
    echo "ok    kubernetes-validate --strict: $(cd "$k8s" && echo *.yaml)"
    # Broken copies must be refused: a misspelt field, a wrong type.
    for edit in 's/completionMode: Indexed/completionsMode: Indexed/' \
        's/parallelism: 3/parallelism: three/' \
        's/backoffLimit: 3/backoffLimit: [3]/' \
        's/claimName: forkswap-results/claim: forkswap-results/'; do
        sed "$edit" "$k8s/compare-job.yaml" >"$work/broken.yaml"
        if cmp -s "$work/broken.yaml" "$k8s/compare-job.yaml"; then
            echo "FAIL  the edit $edit changed nothing in compare-job.yaml" >&2
            exit 1
        fi
        if validate --strict --quiet "$work/broken.yaml" >/dev/null 2>&1; then
            echo "FAIL  kubernetes-validate accepted compare-job.yaml with $edit" >&2
            exit 1
        fi
        echo "ok    refused: compare-job.yaml with $edit"
    done
    "$py" "$k8s/manifests.py" check
else
    echo "k8s test: SKIPPED the schema and fit checks: kubernetes-validate cannot be installed (python3 -m venv or pip install kubernetes-validate failed)"
fi

# The pods' command lines, run here (read with PyYAML: manifests.py).
if [ "$validator" = 1 ]; then
    compare_sh=$("$py" "$k8s/manifests.py" script compare)
    merge_sh=$("$py" "$k8s/manifests.py" script merge)
    shards=$("$py" "$k8s/manifests.py" shards)
else
    echo "k8s test: SKIPPED the pods' command lines too (they are read with PyYAML)"
    exit 0
fi
kernel=$(cargo xtask build)
cargo build -q -p runner
runner=${CARGO_TARGET_DIR:-$root/target}/debug/runner
map() {
    sed -e "s|/usr/local/bin/forkswap|$runner|g" -e "s|/opt/forkswap/kernel|$kernel|g" \
        -e "s|/results|$work/results|g" <<<"$1"
}
plan=(--variants baseline --boots 3 --seconds 0.5 --cpus 1 --jobs 1 --accel tcg)
for ((i = 0; i < shards; i++)); do
    env -u SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX="$i" FORKSWAP_SHARDS="$shards" \
        sh -c "$(map "$compare_sh")" forkswap-compare "${plan[@]}" >"$work/pod-$i.out" 2>&1 || {
        echo "FAIL  shard pod $i:" >&2
        cat "$work/pod-$i.out" >&2
        exit 1
    }
    grep -q "shard $((i + 1))/$shards" "$work/pod-$i.out" || {
        echo "FAIL  pod $i did not run shard $((i + 1))/$shards:" >&2
        cat "$work/pod-$i.out" >&2
        exit 1
    }
done
echo "ok    $shards shard pods' command lines ran shards 1..$shards/$shards (JOB_COMPLETION_INDEX 0..$((shards - 1)))"
sh -c "$(map "$merge_sh")" >"$work/merge.out" 2>&1 || {
    echo "FAIL  the merge pod's command line:" >&2
    cat "$work/merge.out" >&2
    exit 1
}
grep -q "merged $shards shard report(s): 3 boots of 1 variant(s)" "$work/merge.out" || {
    echo "FAIL  the merge did not cover the plan:" >&2
    cat "$work/merge.out" >&2
    exit 1
}
echo "ok    the merge pod's command line merged the $shards shards into one report of the plan"
echo "k8s test: passed"

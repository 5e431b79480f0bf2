#!/usr/bin/env bash
# Runs a forkswap compare campaign on a Kubernetes cluster with kubectl:
# the results claim, the Indexed Job of the shards, a wait for it to
# complete (Jobs have no dependencies), the merge Job, a wait for it, and
# its table. Edit compare-job.yaml first (image, plan, completions and
# FORKSWAP_SHARDS, parallelism). Untested here: no cluster on the test
# machine (deploy/k8s/test.sh checks the manifests and runs their command
# lines without Kubernetes).
#
#   deploy/k8s/campaign.sh [TIMEOUT]   (kubectl wait's, default 24h)
#
# Afterwards the reports are on the claim forkswap-results:
# shards/shard-<I>.json and merged.json. Delete the Jobs
# (`kubectl delete job forkswap-compare forkswap-merge`) before the next
# campaign; clear or replace the claim too (merge takes every shard file).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
timeout=${1:-24h}
kubectl apply -f "$here/pvc.yaml"
kubectl apply -f "$here/compare-job.yaml"
kubectl wait --for=condition=complete --timeout="$timeout" job/forkswap-compare
kubectl apply -f "$here/merge-job.yaml"
kubectl wait --for=condition=complete --timeout="$timeout" job/forkswap-merge
kubectl logs job/forkswap-merge

#!/usr/bin/env python3
"""Checks a finished Slurm compare campaign against the same plan run on one
machine (scripts/slurm/test.sh). Real boots differ from run to run, so it
compares what must be equal: the plan (machine, accelerator, CPUs, seconds,
boots per variant, seed base, kernel), the variants, and every boot's
(variant, seed) in plan order; that each array task ran its own shard under
slurmd; that the merged boots are exactly the shards' boots; and that the
merged summaries are the ones `merge` computes from those boots (the report
merged again by itself, REMERGED, must have the same summaries).

usage: check-campaign.py CAMPAIGN_DIR SINGLE.json REMERGED.json SHARDS ARRAY_JOB_ID
Prints one line per check; exits 1 on the first failed one.
"""

import json
import sys

PLAN = ["machine", "accel", "cpus", "seconds", "boots_per_variant", "seed_base",
        "kernel_sha256", "planned"]


def load(path):
    with open(path) as f:
        return json.load(f)


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        sys.exit(1)


def cells(report):
    return [(b["variant"], b["seed"]) for b in report["boots"]]


def canon(boots):
    return sorted(json.dumps(b, sort_keys=True) for b in boots)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    out, single_path, remerged_path, n, array = sys.argv[1:]
    n = int(n)
    single, merged, remerged = load(single_path), load(out + "/merged.json"), load(remerged_path)
    shard_boots = []
    for i in range(1, n + 1):
        s = load(f"{out}/shards/shard-{i}.json")
        check(s["shard"] == {"index": i, "count": n} and not s["interrupted"],
              f"shard-{i}.json is shard {i}/{n} of the plan, not interrupted")
        with open(f"{out}/logs/compare-{array}_{i}.out") as f:
            head = f.readline()
        check(f"array job {array} task {i} " in head and "on node " in head
              and "on node ?" not in head,
              f"array task {i} ran under slurmd: {head.strip()}")
        shard_boots += s["boots"]
    for k in PLAN:
        check(merged[k] == single[k], f"plan field {k}: {merged[k]!r}")
    check(merged["shard"] is None and len(merged["merged_from"]) == n
          and not merged["interrupted"],
          f"merged.json is the whole plan, merged from {n} shards")
    check([v["variant"] for v in merged["variants"]]
          == [v["variant"] for v in single["variants"]], "same variants in the same order")
    check(cells(merged) == cells(single),
          f"same {len(single['boots'])} boots (variant, seed) in plan order")
    check(canon(merged["boots"]) == canon(shard_boots),
          "the merged boots are exactly the shards' boots")
    check(all(v["boots"] == single["boots_per_variant"] for v in merged["variants"]),
          "every variant's summary counts its boots")
    check(remerged["variants"] == merged["variants"],
          "the merged summaries are the ones computed from its boots")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What deploy/k8s/test.sh needs to know about the manifests beyond their
schema (kubernetes-validate checks that): that they fit together, and the
shell lines their pods run.

  manifests.py check        the Indexed Job, the merge Job and the claim fit
                            together; one line per check, exit 1 on a failed one
  manifests.py script JOB   the shell line of JOB (compare or merge)
  manifests.py shards       the compare Job's completions
"""

import os
import sys

import yaml  # PyYAML, a dependency of kubernetes-validate

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name):
    with open(os.path.join(HERE, name)) as f:
        return yaml.safe_load(f)


def pod(job):
    return job["spec"]["template"]["spec"]


def container(job):
    (c,) = pod(job)["containers"]
    return c


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        sys.exit(1)


def claims(job):
    return {v["persistentVolumeClaim"]["claimName"]
            for v in pod(job)["volumes"] if "persistentVolumeClaim" in v}


def main():
    compare, merge, pvc = load("compare-job.yaml"), load("merge-job.yaml"), load("pvc.yaml")
    what = sys.argv[1:]
    if what == ["shards"]:
        print(compare["spec"]["completions"])
    elif len(what) == 2 and what[0] == "script" and what[1] in ("compare", "merge"):
        print(container(compare if what[1] == "compare" else merge)["args"][0])
    elif what == ["check"]:
        spec = compare["spec"]
        check(spec.get("completionMode") == "Indexed", "the compare Job is an Indexed Job")
        n = spec["completions"]
        env = {e["name"]: e.get("value") for e in container(compare).get("env", [])}
        check(env.get("FORKSWAP_SHARDS") == str(n),
              f"FORKSWAP_SHARDS ({env.get('FORKSWAP_SHARDS')}) equals completions ({n})")
        check(1 <= spec.get("parallelism", 1) <= n, "parallelism is 1 to completions")
        args = container(compare)["args"]
        check("--shard auto" in args[0], "the shard pods run compare --shard auto")
        plan = args[2:]
        check("--accel" in plan and plan[plan.index("--accel") + 1] in ("tcg", "kvm"),
              "the accelerator is explicit (every shard must use the same)")
        check(not any(a.startswith(("--shard", "--json")) for a in plan),
              "the plan arguments leave --shard and --json to the script")
        check(container(compare)["image"] == container(merge)["image"],
              "both Jobs run the same image")
        name = pvc["metadata"]["name"]
        check(claims(compare) == claims(merge) == {name},
              f"both Jobs mount the claim {name}")
        check(all(pod(j)["restartPolicy"] == "Never" for j in (compare, merge)),
              "restartPolicy Never (a failed shard is a new pod, counted by backoffLimit)")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

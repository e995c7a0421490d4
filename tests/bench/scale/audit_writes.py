#!/usr/bin/env python3
"""The API server's writes by client, from a test cluster's audit log (Metadata level).

  python3 tests/bench/scale/audit_writes.py WORK/cluster/logs/audit.log [NAMESPACE]

Prints, most frequent first, the completed writes (not get/list/watch) by user agent, verb,
resource[/subresource] and response code, in NAMESPACE (and cluster-scoped ones) when given.
scale_bench.py keeps its work folder (printed at the start), cluster logs included, so a run's
writes per job can be read after it: session 10 found kwok patching our pods 3.2 times each
this way (scale.md), and each result counts them with completed_writes(). Also useful beside
it: "Forcing ... watcher close due to unresponsiveness" in WORK/cluster/logs/kube-apiserver.log
names the watches the API server gave up on.
"""
import collections
import json
import sys


def completed_writes(path, namespace=None):
    """Counter of (user agent, verb, resource[/subresource], response code) -> completed writes in
    the audit log at path, in namespace (and cluster-scoped ones) when given. scale_bench.py
    counts kwok's pod status patches with it."""
    writes = collections.Counter()
    with open(path, errors="replace") as log:
        for line in log:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short at the end of a run
            if event.get("stage") != "ResponseComplete" or event.get("verb") in ("get", "list", "watch"):
                continue
            ref = event.get("objectRef") or {}
            if namespace and ref.get("namespace") not in (namespace, None):
                continue
            agent = (event.get("userAgent") or "").split("/")[0].split(" ")[0]
            resource = ref.get("resource", "") + ("/" + ref["subresource"] if ref.get("subresource") else "")
            code = str((event.get("responseStatus") or {}).get("code"))
            writes[(agent, event["verb"], resource, code)] += 1
    return writes


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    writes = completed_writes(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None)
    for key, count in writes.most_common(40):
        print(f"{count:8d}  {' '.join(key)}")


if __name__ == "__main__":
    main()

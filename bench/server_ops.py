"""What the embedded server did during a benchmark phase, from its Prometheus /metrics:
persistence requests (the single SQLite writer is what bounds the dev server) and
frontend calls, by namespace and operation."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections import defaultdict

COUNTED = ("persistence_requests", "persistence_latency_sum", "service_requests")
Ops = dict[tuple[str, str, str], float]
LINE = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.eE+-]+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


def _scrape(port: int) -> Ops:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found: Ops = defaultdict(float)
    for line in text.splitlines():
        match = LINE.match(line)
        if match is None or match.group(1) not in COUNTED:
            continue
        labels = dict(LABEL.findall(match.group(2)))
        if match.group(1) == "service_requests" and labels.get("service_name") != "frontend":
            continue
        key = (match.group(1), labels.get("namespace", "?"), labels.get("operation", "?"))
        found[key] += float(match.group(3))
    return found


async def counters(port: int) -> Ops:
    return await asyncio.to_thread(_scrape, port)


def summary(
    before: Ops,
    after: Ops,
    namespaces: set[str],
    per: int,
    top: int = 12,
) -> dict[str, object]:
    """The phase's counts in `namespaces` (and the system's), per `per` members: totals
    and the operations that cost most."""
    delta = {k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k, 0.0)}
    # Prometheus spells "cli-copy" as "cli_copy"; "system": shard-wide task processing
    keep = {n.replace("-", "_") for n in namespaces} | {"system", "temporal_system", "_unknown_"}

    def of(metric: str) -> dict[str, float]:
        found: dict[str, float] = defaultdict(float)
        for (name, namespace, operation), value in delta.items():
            if name == metric and namespace in keep:
                found[operation] += value
        return found

    requests, seconds, calls = (of(m) for m in COUNTED)
    return {
        "persistence_requests_per_member": round(sum(requests.values()) / per, 1),
        "persistence_seconds": round(sum(seconds.values()), 2),
        "frontend_calls_per_member": round(sum(calls.values()) / per, 1),
        "persistence_by_seconds": {
            op: [int(requests[op]), round(s, 2)] for op, s in _most(seconds, top)
        },
        "frontend_calls": {op: int(n) for op, n in _most(calls, top)},
    }


def _most(counts: dict[str, float], top: int) -> list[tuple[str, float]]:
    return sorted(counts.items(), key=lambda kv: -kv[1])[:top]

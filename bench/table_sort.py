"""Sorting the members table at 100,000 rows: a header click, and what a sorted table
costs afterwards (a refresh's changed rows, a new page of members).

The rows are made here, shaped as visibility lists them (runtime.members.member_row),
and put into the app's own members panel (real widgets, offscreen, shown): the cost
measured is the store's and Qt's, which is all a click costs once the rows are
fetched (`bench.desktop` measures the fetching). Each figure is the median of
`--repeat` runs; each click is timed until the view has handled the change and
painted (events processed), as a person would see it.

Baseline, in the same process and on the same rows: Python's `sorted` of the row
dicts by the column's value (`operator.itemgetter`), the least any sort of these rows
costs here; `ratio` is a click over it, so a slower or busier machine moves both.

    python -m bench.table_sort [--rows 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from bench.common import emit, machine

TIERS = ("Blue", "Gold", "Platinum", "Diamond")


def row(n: int, points_shift: int = 0) -> dict[str, Any]:
    at = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=(n * 7919) % 100_003)
    return {
        "member_id": f"tbl-{(n * 7919) % 1_000_003:07d}",
        "tier": TIERS[n % 4],
        "points": (n * 31) % 9_000 + points_shift,
        "last_event_at": at.isoformat().replace("+00:00", "Z"),
        "pending_proposals": n % 3,
        "build_id": ("0.9.1", "0.10.0", "0.2+drill-zero-on-trip")[n % 3],
        "drill": "zero-on-trip" if n % 3 == 2 else None,
        "run_id": f"run-{n}",
    }


def median_seconds(work: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(rows: int, repeat: int) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from desktop.members_panel import MembersPanel
    from desktop.members_store import COLUMNS

    app = QApplication.instance() or QApplication([])
    panel = MembersPanel()
    panel.resize(1200, 800)
    panel.show()
    data = [row(n) for n in range(rows)]
    store = panel.model.store
    store.replace_all(data)
    app.processEvents()
    panel.select_member(data[rows // 2]["member_id"])
    app.processEvents()
    header = panel.table.horizontalHeader()
    result: dict[str, Any] = {
        "benchmark": "table_sort",
        "machine": machine(),
        "rows": len(store),
        "repeat": repeat,
        "columns": {},
    }

    def click(column: int, order: Qt.SortOrder) -> None:
        header.setSortIndicator(column, order)  # what a header click does
        app.processEvents()

    for column, spec in enumerate(COLUMNS):
        key = itemgetter(spec.key)

        def baseline(key: Any = key) -> None:
            sorted(data, key=key)  # every bench row has every value

        figures: dict[str, float] = {}
        for name, order in (
            ("ascending", Qt.SortOrder.AscendingOrder),
            ("descending", Qt.SortOrder.DescendingOrder),
        ):
            times: list[float] = []
            for _ in range(repeat):
                click(-1, Qt.SortOrder.AscendingOrder)  # back to first seen, not timed
                started = time.perf_counter()
                click(column, order)
                times.append(time.perf_counter() - started)
            figures[name] = statistics.median(times)
        base = median_seconds(baseline, repeat)
        assert panel.selected_member_id() == data[rows // 2]["member_id"]
        result["columns"][spec.key] = {
            "ascending_ms": round(figures["ascending"] * 1000, 1),
            "descending_ms": round(figures["descending"] * 1000, 1),
            "baseline_sorted_ms": round(base * 1000, 1),
            "ratio": round(max(figures.values()) / base, 2),
        }

    # sorted by points, descending: what a refresh and a new page cost now
    click(
        COLUMNS.index(next(c for c in COLUMNS if c.key == "points")), Qt.SortOrder.DescendingOrder
    )
    shift = iter(range(1, 1_000_000))

    def refresh_page() -> None:
        # a refresh's answer: 100 rows from the top plus 200 on screen, values moved
        step = next(shift)
        changed = [row(n, points_shift=step) for n in range(0, rows, rows // 300)]
        store.merge(changed)
        app.processEvents()

    fresh = iter(range(rows, rows + 1_000_000, 100))

    def new_page() -> None:
        first = next(fresh)
        store.merge([row(n) for n in range(first, first + 100)])
        app.processEvents()

    result["sorted_refresh_300_changed_ms"] = round(median_seconds(refresh_page, repeat) * 1000, 1)
    result["sorted_new_page_100_ms"] = round(median_seconds(new_page, repeat) * 1000, 1)
    click(-1, Qt.SortOrder.AscendingOrder)
    result["unsorted_new_page_100_ms"] = round(median_seconds(new_page, repeat) * 1000, 1)
    slowest = max(max(c["ascending_ms"], c["descending_ms"]) for c in result["columns"].values())
    result["slowest_click_ms"] = slowest
    result["max_ratio"] = max(c["ratio"] for c in result["columns"].values())
    panel.stop()
    panel.deleteLater()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    emit(measure(args.rows, args.repeat))


if __name__ == "__main__":
    main()

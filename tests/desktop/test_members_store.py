"""The Qt-free members store: stable rows, in-place updates, exact change notices."""

from __future__ import annotations

from typing import Any

from desktop.members_store import COLUMNS, MembersStore, Row


def member(member_id: str, points: int = 0, **fields: Any) -> Row:
    row: Row = {
        "member_id": member_id,
        "tier": "Blue",
        "points": points,
        "last_event_at": "2026-01-19T09:02:00Z",
        "pending_proposals": 0,
        "build_id": "1.0",
        "drill": None,
        "run_id": "run-1",
    }
    row.update(fields)
    return row


class Recorder:
    """A StoreListener that records what it was told, and checks the pairs."""

    def __init__(self, store: MembersStore) -> None:
        self.store = store
        self.events: list[tuple[Any, ...]] = []
        self._open: tuple[Any, ...] | None = None

    def _begin(self, *event: Any) -> None:
        assert self._open is None, f"{event} inside {self._open}"
        self._open = event
        self.events.append(event)

    def _end(self, kind: str) -> None:
        assert self._open is not None and self._open[0] == kind
        self._open = None

    def before_reset(self) -> None:
        self._begin("reset")

    def after_reset(self) -> None:
        self._end("reset")

    def before_insert(self, first: int, last: int) -> None:
        assert first == len(self.store)  # appended, and announced before the change
        self._begin("insert", first, last)

    def after_insert(self) -> None:
        self._end("insert")

    def before_remove(self, first: int, last: int) -> None:
        assert last < len(self.store)
        self._begin("remove", first, last)

    def after_remove(self) -> None:
        self._end("remove")

    def rows_changed(self, first: int, last: int, first_column: int, last_column: int) -> None:
        assert self._open is None
        self.events.append(("changed", first, last, first_column, last_column))


def make_store(*rows: Row) -> tuple[MembersStore, Recorder]:
    store = MembersStore()
    recorder = Recorder(store)
    store.listener = recorder
    store.replace_all(rows)
    recorder.events.clear()
    return store, recorder


def test_update_in_place_keeps_order_and_reports_only_changed_cells() -> None:
    store, recorder = make_store(member("a", 10), member("b", 20), member("c", 30))
    points = [c.key for c in COLUMNS].index("points")

    result = store.merge([member("c", 30), member("b", 25)])  # c unchanged, b changed

    assert (result.updated, result.inserted) == (1, 0)
    assert store.member_ids() == ["a", "b", "c"]
    assert store.row(1)["points"] == 25
    assert recorder.events == [("changed", 1, 1, points, points)]


def test_new_members_are_appended_never_reset() -> None:
    store, recorder = make_store(member("a"), member("b"))

    # the server lists a newer member first; it still goes to the end, rows stay put
    result = store.merge([member("z"), member("a", 5), member("y")])

    assert (result.updated, result.inserted) == (1, 2)
    assert store.member_ids() == ["a", "b", "z", "y"]
    assert [e[0] for e in recorder.events] == ["changed", "insert"]
    assert recorder.events[1] == ("insert", 2, 3)
    assert store.position_of("y") == 3


def test_adjacent_changes_coalesce_into_one_rectangle() -> None:
    store, recorder = make_store(*(member(f"m{i}") for i in range(5)))
    tier = [c.key for c in COLUMNS].index("tier")
    points = [c.key for c in COLUMNS].index("points")

    store.merge([member("m1", 1), member("m2", tier="Gold"), member("m4", 4)])

    assert recorder.events == [
        ("changed", 1, 2, tier, points),
        ("changed", 4, 4, points, points),
    ]


def test_hidden_field_change_still_reports_the_row() -> None:
    store, recorder = make_store(member("a"))

    store.merge([member("a", run_id="run-2")])

    assert recorder.events == [("changed", 0, 0, 0, len(COLUMNS) - 1)]
    assert store.row(0)["run_id"] == "run-2"


def test_drill_label_change_reports_the_build_column() -> None:
    store, recorder = make_store(member("a"))
    build = [c.key for c in COLUMNS].index("build_id")

    store.merge([member("a", drill="zero-on-trip")])

    assert recorder.events == [("changed", 0, 0, build, build)]


def test_remove_in_contiguous_blocks_from_the_bottom() -> None:
    store, recorder = make_store(*(member(f"m{i}") for i in range(6)))

    removed = store.remove(["m1", "m2", "m4", "unknown"])

    assert removed == 3
    assert store.member_ids() == ["m0", "m3", "m5"]
    assert recorder.events == [("remove", 4, 4), ("remove", 1, 2)]
    assert [store.position_of(m) for m in ("m0", "m3", "m5")] == [0, 1, 2]
    assert store.position_of("m1") is None


def test_sync_removes_only_within_scope() -> None:
    store, recorder = make_store(member("a"), member("b"), member("c"), member("d"))

    # the answer for the rows on screen (b, c): c is gone, b changed; a and d untouched
    result = store.sync([member("b", 7)], scope=["b", "c"])

    assert (result.updated, result.inserted, result.removed) == (1, 0, 1)
    assert store.member_ids() == ["a", "b", "d"]
    assert [e[0] for e in recorder.events] == ["changed", "remove"]


def test_same_member_twice_in_a_page_counts_once_last_wins() -> None:
    store, _ = make_store()

    store.merge([member("a", 1), member("b"), member("a", 2)])

    assert store.member_ids() == ["a", "b"]
    assert store.row(0)["points"] == 2


def test_unchanged_merge_is_silent() -> None:
    store, recorder = make_store(member("a"), member("b"))

    result = store.merge([member("b"), member("a")])

    assert (result.updated, result.inserted, result.removed) == (0, 0, 0)
    assert recorder.events == []

"""The Qt-free members store: stable rows, in-place updates, exact change notices."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from desktop.members_store import COLUMNS, MembersStore, Row, SortOrder
from tests.kit.members import member
from workflows.rules import TIER_NAMES


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
        # appended in first-seen order (sorted: anywhere), announced before the change
        assert first == len(self.store) or (self.store.order and first <= len(self.store))
        self._begin("insert", first, last)

    def after_insert(self) -> None:
        self._end("insert")

    def before_remove(self, first: int, last: int) -> None:
        assert last < len(self.store)
        self._begin("remove", first, last)

    def after_remove(self) -> None:
        self._end("remove")

    def before_move(self, source: int, destination: int) -> None:
        assert 0 <= source < len(self.store) and 0 <= destination <= len(self.store)
        assert destination not in (source, source + 1)  # Qt refuses a move to nowhere
        self._begin("move", source, destination)

    def after_move(self) -> None:
        self._end("move")

    def before_layout(self) -> None:
        self._begin("layout")

    def after_layout(self) -> None:
        self._end("layout")

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


# -- sorting --------------------------------------------------------------------


def shown(store: MembersStore, key: str) -> list[Any]:
    return [store.row(p).get(key) for p in range(len(store))]


def in_order(values: list[Any], key: str, descending: bool) -> bool:
    """What a person checks: present values ordered, members without one last (no
    tier is also a name that is not a tier's; no time or build also an empty one)."""
    rank = {name: i for i, name in enumerate(TIER_NAMES)}
    if key == "tier":
        values = [rank.get(v) for v in values]
    elif key in ("last_event_at", "build_id"):
        values = [v or None for v in values]
    present = [v for v in values if v is not None]
    if values[: len(present)] != present:
        return False  # a missing value before a present one
    if key == "last_event_at":
        whole = [v.replace("Z", "").partition(".") for v in present]
        present = [f"{day}.{fraction.ljust(6, '0')}" for day, _, fraction in whole]
    return present == sorted(present, reverse=descending)


def expected_order(members: list[Row], key: str, descending: bool) -> list[str]:
    """The order a person is promised: by value, ties in the order first seen, members
    without a value last; descending is the ascending list read from its end."""
    rank = {name: i for i, name in enumerate(TIER_NAMES)}

    def value(row: Row) -> Any:
        v = row.get(key)
        if key == "tier":
            return rank.get(v)
        if key == "pending_proposals":
            return v if isinstance(v, int) else 0
        if key == "last_event_at" and v:
            day, _, fraction = v.replace("Z", "").partition(".")
            return f"{day}.{fraction.ljust(6, '0')}"
        if key == "build_id" and v:
            return [int(part) for part in v.split(".")]
        return v if v not in ("", None) else None

    present = sorted((r for r in members if value(r) is not None), key=value)
    missing = [r for r in members if value(r) is None]
    ordered = list(reversed(missing + present)) if descending else present + missing
    return [r["member_id"] for r in ordered]


def test_sorting_by_a_column_orders_rows_and_back_to_first_seen() -> None:
    store, recorder = make_store(
        member("c", 30, tier="Gold"),
        member("a", None, tier="Diamond"),  # type: ignore[arg-type]
        member("b", 10, tier="Platinum"),
        member("d", 10, tier=None),
    )
    store.sort(SortOrder("points"))
    assert recorder.events == [("layout",)]
    assert store.member_ids() == ["b", "d", "c", "a"]  # ties by first seen; none last
    store.sort(SortOrder("points", descending=True))
    assert store.member_ids() == ["c", "d", "b", "a"]  # missing still last
    store.sort(SortOrder("tier"))
    assert shown(store, "tier") == ["Gold", "Platinum", "Diamond", None]  # by rank
    store.sort(SortOrder("member_id", descending=True))
    assert store.member_ids() == ["d", "c", "b", "a"]
    assert [store.position_of(m) for m in "abcd"] == [3, 2, 1, 0]
    store.sort(None)
    assert store.member_ids() == ["c", "a", "b", "d"]


def test_times_sort_by_time_whatever_their_fraction_and_builds_by_number() -> None:
    store, _ = make_store(
        member("a", last_event_at="2026-03-01T10:00:00.500000Z", build_id="0.10.0"),
        member("b", last_event_at="2026-03-01T10:00:00Z", build_id="0.9.1"),
        member("c", last_event_at="2026-03-01T09:59:59.999Z", build_id="0.2+drill-x"),
    )
    store.sort(SortOrder("last_event_at"))
    assert store.member_ids() == ["c", "b", "a"]
    store.sort(SortOrder("build_id"))
    assert store.member_ids() == ["c", "b", "a"]


def test_sorted_rows_move_alone_when_their_value_changes_and_new_ones_land_in_place() -> None:
    store, recorder = make_store(*(member(f"m{i}", i * 10) for i in range(5)))
    store.sort(SortOrder("points", descending=True))  # m4 m3 m2 m1 m0
    recorder.events.clear()
    points = [c.key for c in COLUMNS].index("points")

    result = store.merge([member("m0", 35), member("m3", 31), member("new", 15)])

    assert (result.updated, result.inserted) == (2, 1)
    assert store.member_ids() == ["m4", "m0", "m3", "m2", "new", "m1"]
    assert recorder.events == [
        ("move", 4, 1),  # m0: 0 -> 35 moves up, alone
        ("changed", 1, 1, points, points),
        ("changed", 2, 2, points, points),  # m3: 30 -> 31 keeps its place
        ("insert", 4, 4),
    ]
    store.remove(["m4", "m3", "m1"])
    assert store.member_ids() == ["m0", "m2", "new"]
    assert [store.position_of(m) for m in ("m0", "m2", "new")] == [0, 1, 2]


SORTABLE = [c.key for c in COLUMNS]
rows_strategy = st.lists(
    st.builds(
        lambda n, points, tier, minute, fraction, build, pending: member(
            f"m{n}",
            points,
            tier=tier,
            last_event_at=None if minute is None else f"2026-03-01T10:{minute:02d}:00{fraction}Z",
            build_id=build,
            pending_proposals=pending,
        ),
        st.integers(0, 30),
        # ties, no value, and the ends of the 64-bit integers visibility holds
        st.one_of(st.none(), st.integers(-5, 5), st.sampled_from([-(2**63), 2**63 - 1])),
        st.one_of(st.none(), st.sampled_from([*TIER_NAMES, "gold", ""])),
        st.one_of(st.none(), st.integers(0, 59)),
        st.sampled_from(["", ".5", ".123456"]),
        st.one_of(st.none(), st.sampled_from(["1.0", "1.2", "0.10", ""])),
        st.one_of(st.none(), st.integers(0, 3)),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    first=rows_strategy,
    later=st.lists(st.tuples(rows_strategy, st.lists(st.integers(0, 30), max_size=4)), max_size=4),
    key=st.sampled_from(SORTABLE),
    descending=st.booleans(),
)
def test_a_sorted_store_stays_sorted_through_merges_and_removals(
    first: list[Row], later: list[tuple[list[Row], list[int]]], key: str, descending: bool
) -> None:
    """Whatever arrives while sorted (new members, changed values, removals), every
    row is shown once, in order, and each member is found where it is shown."""
    store, _checks = make_store(*first)  # the recorder checks every notice it gets
    store.sort(SortOrder(key, descending))
    members: dict[str, Row] = {}  # in the order first seen, the last row of each
    for rows, gone in [(first, []), *later]:  # the sort itself, then each change
        store.merge(rows)
        store.remove(f"m{n}" for n in gone)
        members.update((row["member_id"], row) for row in rows)
        for n in gone:
            members.pop(f"m{n}", None)
        assert store.member_ids() == expected_order(list(members.values()), key, descending)
        values = shown(store, key)
        if key in ("points", "pending_proposals"):
            values = [v if isinstance(v, int) else (0 if key != "points" else None) for v in values]
        if key != "member_id":
            assert in_order(values, key, descending), (key, descending, values)
        ids = store.member_ids()
        assert len(ids) == len(set(ids))
        assert all(store.position_of(m) == p for p, m in enumerate(ids))
        if key == "member_id":
            assert ids == sorted(ids, reverse=descending)

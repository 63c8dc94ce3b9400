"""Paging and refreshing members against a fake visibility source (no server, no Qt)."""

from __future__ import annotations

import asyncio

import pytest

from desktop.members_loader import MembersLoader, search_query
from desktop.members_store import MembersStore, Row
from tests.kit.members import FakeVisibility, member


def make(rows: list[Row], page_size: int = 3) -> tuple[MembersLoader, FakeVisibility]:
    source = FakeVisibility(rows)
    loader = MembersLoader(
        store=MembersStore(), source=source, page_size=page_size, refresh_head_size=page_size
    )
    return loader, source


async def test_pages_load_lazily_until_the_token_runs_out() -> None:
    loader, _ = make([member(f"m{i}") for i in range(7)])
    store = loader.store

    await loader.reload(None)
    assert store.member_ids() == ["m0", "m1", "m2"] and store.more_available
    assert loader.total == 7
    await loader.load_more()
    await loader.load_more()
    assert store.member_ids() == [f"m{i}" for i in range(7)]
    assert not store.more_available and not store.loading
    assert (await loader.load_more()).inserted == 0


async def test_refresh_updates_visible_rows_in_place_and_appends_new_members() -> None:
    loader, source = make([member(f"m{i}") for i in range(7)])
    store = loader.store
    await loader.reload(None)
    await loader.load_more()  # m0..m5 loaded

    # m5 continued-as-new (now listed first, more points); a new member n1 arrived;
    # m4 is gone (closed)
    rows = {r["member_id"]: r for r in source.rows}
    source.rows = [member("m5", 50), member("n1"), rows["m0"], rows["m1"]] + [
        rows[m] for m in ("m2", "m3", "m6")
    ]
    result = await loader.refresh(["m3", "m4", "m5"])

    assert store.member_ids() == ["m0", "m1", "m2", "m3", "m5", "n1"]
    assert store.row(store.position_of("m5") or 0)["points"] == 50
    assert (result.updated, result.inserted, result.removed) == (1, 1, 1)
    in_query = source.queries[-1]
    assert in_query is not None and "'member-m3'" in in_query and "'member-m5'" not in in_query


async def test_refresh_of_a_complete_small_result_removes_the_missing() -> None:
    loader, source = make([member("a"), member("b")], page_size=10)
    await loader.reload(None)
    source.rows = [member("b", 3)]

    result = await loader.refresh([])

    assert loader.store.member_ids() == ["b"] and result.removed == 1


async def test_a_new_query_drops_answers_to_the_old_one() -> None:
    loader, source = make([member(f"m{i}") for i in range(5)])
    await loader.reload(None)
    gate = asyncio.Event()
    source.gate = gate
    stale = asyncio.create_task(loader.refresh(loader.store.member_ids()))
    await asyncio.sleep(0)  # the refresh now waits for its first page
    source.gate = None
    await loader.reload("LoyaltyTier = 'Gold'")
    source.rows.append(member("late"))  # the stale refresh would see it...
    gate.set()
    result = await stale

    assert (result.updated, result.inserted, result.removed) == (0, 0, 0)  # ...but drops it
    assert loader.query == "LoyaltyTier = 'Gold'"
    assert "late" not in loader.store.member_ids()


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("", None),
        ("  ", None),
        ("sim-0001", "WorkflowId STARTS_WITH 'member-sim-0001'"),
        ("LoyaltyTier = 'Gold'", "LoyaltyTier = 'Gold'"),
        ("LoyaltyPoints > 10 AND LoyaltyTier='Blue'", "LoyaltyPoints > 10 AND LoyaltyTier='Blue'"),
    ],
)
def test_search_text_is_a_prefix_or_a_query(text: str, query: str | None) -> None:
    assert search_query(text) == query

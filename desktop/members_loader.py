"""Filling a `MembersStore` from visibility queries: first page, more pages, refreshes.

Pages come from the server as they are asked for (lazy paging with next-page tokens),
so 100,000 members cost one page at first. A refresh never re-reads what is loaded:
it reads the first page (which finds new members, and those that just continued as
new) and the members on screen by id, and updates those rows in place.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from desktop.members_store import MembersStore, MergeResult, Row
from workflows.ids import MEMBER_PREFIX as WORKFLOW_ID_PREFIX
from workflows.visibility import all_of, literal

if TYPE_CHECKING:
    from temporalio.client import Client

# Small pages keep the GUI thread free: the SDK decodes a page's search attributes in
# one go on the event loop (~65 us a row, ~30 ms for 500 rows, several times that on a
# busy machine), while the server's cost is per row, so 100-row pages load 100,000
# members no slower than 500-row ones (bench.desktop) and show the first rows sooner.
PAGE_SIZE = 100
# A refresh reads this many members from the top to find new ones: small, because the
# server takes ~1 ms a row and a refresh runs every two seconds.
REFRESH_HEAD_SIZE = 100
# The WorkflowId IN (...) query for the rows on screen stays well inside query limits.
MAX_VISIBLE_IDS = 200

_ID_PREFIX = re.compile(r"^[A-Za-z0-9_.@-]+$")


class MembersSource(Protocol):
    """Where member rows come from: Temporal visibility, or a fake in tests."""

    async def page(
        self, query: str | None, token: bytes | None, size: int
    ) -> tuple[list[Row], bytes | None]:
        """Rows of one page of `query` (None: every member) and the next page's token."""
        ...

    async def count(self, query: str | None) -> int: ...


class TemporalMembersSource:
    """Member rows from the server's visibility store, through one client."""

    def __init__(self, *, client: Client) -> None:
        self._client = client

    async def page(
        self, query: str | None, token: bytes | None, size: int
    ) -> tuple[list[Row], bytes | None]:
        from runtime.members import member_query, member_row

        listing = self._client.list_workflows(
            member_query(query), page_size=size, next_page_token=token
        )
        await listing.fetch_next_page()
        return [member_row(e) for e in listing.current_page or ()], listing.next_page_token

    async def count(self, query: str | None) -> int:
        from runtime.members import count_members

        return await count_members(self._client, query)


def search_query(text: str) -> str | None:
    """The search box: a member id prefix, or else a raw visibility query."""
    text = text.strip()
    if not text:
        return None
    if _ID_PREFIX.match(text):
        return f"WorkflowId STARTS_WITH {literal(WORKFLOW_ID_PREFIX + text)}"
    return text


def _and(query: str | None, extra: str) -> str:
    return all_of(query, extra) or extra


class MembersLoader:
    """Loads member rows of one query into a store.

    A new query (`reload`) makes earlier loads and refreshes of the old one drop
    their answers, so a slow answer can never put the wrong members on screen.
    """

    def __init__(
        self,
        *,
        store: MembersStore,
        source: MembersSource,
        page_size: int = PAGE_SIZE,
        refresh_head_size: int = REFRESH_HEAD_SIZE,
    ) -> None:
        self.store = store
        self.source = source
        self.page_size = page_size
        self.refresh_head_size = refresh_head_size
        self.query: str | None = None
        self.total: int | None = None  # members matching the query, when counted
        self._token: bytes | None = None
        self._generation = 0

    async def reload(self, query: str | None) -> None:
        """Start over with `query`: the first page replaces every row."""
        self._generation += 1
        generation = self._generation
        self.store.loading = True
        try:
            rows, token = await self.source.page(query, None, self.page_size)
            total = await self.source.count(query)
        finally:
            if generation == self._generation:
                self.store.loading = False
        if generation != self._generation:
            return
        self.query = query  # only now: a query the server refused leaves the old one
        self._token = token
        self.total = total
        self.store.more_available = token is not None
        self.store.replace_all(rows)

    async def load_more(self) -> MergeResult:
        """The next page, appended (members already shown are updated in place)."""
        store = self.store
        if store.loading or not store.more_available:
            return MergeResult()
        generation = self._generation
        store.loading = True
        try:
            rows, token = await self.source.page(self.query, self._token, self.page_size)
        finally:
            if generation == self._generation:
                store.loading = False
        if generation != self._generation:
            return MergeResult()
        self._token = token
        store.more_available = token is not None
        return store.merge(rows)

    async def refresh(self, visible_ids: list[str]) -> MergeResult:
        """Bring the first page and the rows on screen up to date, in place."""
        generation = self._generation
        query = self.query
        head, head_token = await self.source.page(query, None, self.refresh_head_size)
        in_head = {row["member_id"] for row in head}
        visible = [m for m in dict.fromkeys(visible_ids) if m not in in_head][:MAX_VISIBLE_IDS]
        on_screen: list[Row] = []
        if visible:
            ids = ", ".join(literal(WORKFLOW_ID_PREFIX + m) for m in visible)
            on_screen, _ = await self.source.page(
                _and(query, f"WorkflowId IN ({ids})"), None, len(visible)
            )
        total = await self.source.count(query)
        if generation != self._generation:
            return MergeResult()
        self.total = total
        store = self.store
        if head_token is None:
            # the first page is the whole answer: whatever it lacks is gone
            store.more_available = False
            return store.sync(head + on_screen, scope=store.member_ids())
        head_result = store.merge(head)
        visible_result = store.sync(on_screen, scope=visible)
        return MergeResult(
            updated=head_result.updated + visible_result.updated,
            inserted=head_result.inserted + visible_result.inserted,
            removed=visible_result.removed,
        )

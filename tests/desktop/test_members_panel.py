"""The members panel against a fake visibility source: paging by scrolling, refreshes
that keep selection and scroll position, errors shown inline."""

from __future__ import annotations

import asyncio
from typing import Any

import qasync
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QSignalSpy, QTest
from temporalio.service import RPCError, RPCStatusCode

from desktop.asyncutil import wait_until
from desktop.members_loader import PAGE_SIZE
from desktop.members_panel import MembersPanel
from desktop.members_store import COLUMNS
from tests.kit.members import FakeVisibility, member


def make_panel(qtbot: Any, rows: int) -> tuple[MembersPanel, FakeVisibility]:
    panel = MembersPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    return panel, FakeVisibility([member(f"m{i:05d}", i) for i in range(rows)])


def test_scrolling_to_the_end_loads_the_next_page(qloop: qasync.QEventLoop, qtbot: Any) -> None:
    rows = 2 * PAGE_SIZE + PAGE_SIZE // 2
    panel, source = make_panel(qtbot, rows)

    async def scenario() -> None:
        await panel.set_source(source)
        assert panel.model.rowCount() == PAGE_SIZE
        assert panel.count_label.text() == (
            f"{rows:,} members · {PAGE_SIZE:,} loaded (scroll for more)"
        )
        for expected in (2 * PAGE_SIZE, rows):
            panel.table.scrollToBottom()
            await wait_until(lambda n=expected: panel.model.rowCount() == n, timeout=5)
        assert not panel.model.store.more_available
        assert panel.count_label.text() == f"{rows:,} members"
        assert panel.model.store.member_ids()[-1] == f"m{rows - 1:05d}"

    qloop.run_until_complete(scenario())
    panel.stop()


def test_refresh_keeps_selection_and_scroll_and_updates_in_place(
    qloop: qasync.QEventLoop, qtbot: Any
) -> None:
    panel, source = make_panel(qtbot, 3 * PAGE_SIZE)
    # on the first page, far enough down to scroll to
    chosen, below = f"m{PAGE_SIZE // 2:05d}", f"m{PAGE_SIZE // 2 + 1:05d}"

    async def scenario() -> None:
        await panel.set_source(source)
        assert panel.select_member(chosen)
        bar = panel.table.verticalScrollBar()
        scrolled_to = bar.value()
        assert scrolled_to > 0
        resets = QSignalSpy(panel.model.modelReset)
        # the chosen member gains points and jumps to the top of the server's order;
        # a new member arrives; the one below it (also on screen) is gone
        source.rows = [member(chosen, 9_999), member("new")] + [
            r for r in source.rows if r["member_id"] not in (chosen, below)
        ]
        await panel._refresh()
        row = panel.model.store.position_of(chosen)
        assert row == PAGE_SIZE // 2  # stays where it was
        assert panel.model.store.row(row)["points"] == 9_999
        assert panel.model.store.member_ids()[-1] == "new"
        assert below not in panel.model.store.member_ids()
        assert panel.selected_member_id() == chosen
        assert bar.value() == scrolled_to
        assert resets.count() == 0

    qloop.run_until_complete(scenario())
    panel.stop()


class FailingVisibility(FakeVisibility):
    async def page(self, query: str | None, token: bytes | None, size: int) -> Any:
        if query and "bad" in query:
            raise RPCError(
                "invalid query: malformed SQL query: syntax error at position 113",
                RPCStatusCode.INVALID_ARGUMENT,
                b"",
            )
        return await super().page(query, token, size)


def test_a_bad_query_is_shown_inline_and_cleared_by_a_good_one(
    qloop: qasync.QEventLoop, qtbot: Any
) -> None:
    panel = MembersPanel()
    qtbot.addWidget(panel)
    panel.show()
    posted = QSignalSpy(panel.status_posted)

    async def scenario() -> None:
        await panel.set_source(FailingVisibility([member("a"), member("b")]))
        panel.search.setText("bad = ")
        await panel._reload()
        assert panel.error_label.isVisible()
        assert panel.error_label.text() == "Invalid query: malformed SQL query: syntax error"
        assert panel.model.rowCount() == 2  # the old rows stay, and their query
        assert panel.loader is not None and panel.loader.query is None
        assert panel.count_label.text() == "2 members"
        panel.search.setText("")
        await wait_until(lambda: not panel.error_label.isVisible(), timeout=5)
        await asyncio.sleep(0)

    qloop.run_until_complete(scenario())
    assert [posted.at(i)[0] for i in range(posted.count())] == [
        "Invalid query: malformed SQL query: syntax error",
        "",
    ]
    panel.stop()


def test_a_query_that_would_widen_the_list_is_refused_before_it_is_sent(
    qloop: qasync.QEventLoop, qtbot: Any
) -> None:
    panel, source = make_panel(qtbot, 3)
    attack = "LoyaltyTier = 'x') OR (WorkflowId STARTS_WITH 'member-'"

    async def scenario() -> None:
        await panel.set_source(source)
        await wait_until(lambda: panel.model.rowCount() == 3, timeout=5)
        panel.search.setText(attack)
        await panel._reload()
        assert panel.error_label.isVisible()
        assert panel.error_label.text().startswith(
            "Invalid query: the query closes a parenthesis it did not open"
        )
        assert attack not in source.queries  # never sent to the server
        assert panel.loader is not None and panel.loader.query is None

    qloop.run_until_complete(scenario())
    panel.stop()


def test_no_members_yet_says_where_they_come_from(qloop: qasync.QEventLoop, qtbot: Any) -> None:
    panel, source = make_panel(qtbot, 0)

    async def scenario() -> None:
        assert not panel.simulate_button.isEnabled()  # nothing to send to before connecting
        await panel.set_source(source)
        assert panel.simulate_button.isEnabled()
        assert panel.count_label.text().startswith("No members yet: a member appears with ")
        assert "Simulate traffic…" in panel.count_label.text()
        source.rows.append(member("first"))
        await panel._refresh()
        assert panel.count_label.text() == "1 member"

    qloop.run_until_complete(scenario())
    panel.stop()


def test_showing_the_panel_again_refreshes_its_rows_at_once(
    qloop: qasync.QEventLoop, qtbot: Any
) -> None:
    """Members repaired (or fed) while another tab showed are current as soon as the
    tab is picked again, not a refresh interval later."""
    panel, source = make_panel(qtbot, 5)

    async def scenario() -> None:
        await panel.set_source(source)
        panel.hide()
        source.rows = [
            member("m00002", 4_242) if r["member_id"] == "m00002" else r for r in source.rows
        ]
        await asyncio.sleep(0.1)
        assert panel.model.store.row(panel.model.store.position_of("m00002"))["points"] != 4_242
        panel.show()  # well inside the refresh interval
        await wait_until(
            lambda: (
                panel.model.store.row(panel.model.store.position_of("m00002"))["points"] == 4_242
            ),
            timeout=1,
        )

    qloop.run_until_complete(scenario())
    panel.stop()


def test_clicking_a_header_sorts_keeps_the_selected_member_and_a_third_click_unsorts(
    qtbot: Any,
) -> None:
    panel = MembersPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    tiers = ["Gold", "Blue", "Diamond", "Platinum"]
    panel.model.store.replace_all(
        member(f"m{i}", (i * 37) % 11, tier=tiers[i % 4]) for i in range(12)
    )
    first_seen = panel.model.store.member_ids()
    assert panel.select_member("m5")
    header = panel.table.horizontalHeader()
    points = [c.key for c in COLUMNS].index("points")

    def click(column: int) -> None:
        x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
        QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))

    def column_text(column: int) -> list[str]:
        return [panel.model.index(r, column).data() for r in range(panel.model.rowCount())]

    click(points)
    values = [int(v) for v in column_text(points)]
    assert values == sorted(values)
    assert panel.selected_member_id() == "m5"  # the selection follows its member
    current = panel.table.currentIndex().row()
    assert panel.model.member_id_at(current) == "m5"
    click(points)
    values = [int(v) for v in column_text(points)]
    assert values == sorted(values, reverse=True)
    assert panel.selected_member_id() == "m5"
    click(points)
    assert panel.model.store.member_ids() == first_seen
    tier = [c.key for c in COLUMNS].index("tier")
    click(tier)
    assert column_text(tier) == ["Blue"] * 3 + ["Gold"] * 3 + ["Platinum"] * 3 + ["Diamond"] * 3

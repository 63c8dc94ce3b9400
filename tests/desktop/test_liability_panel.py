"""The Liability panel on a real server: the same numbers as `loyalty-desk liability`
for the deployment's members (one operation, two front ends), progress from a first
count, the configured rate, a cancel that keeps the last report, and CSV export equal to
the CLI's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import qasync

from desktop.liability_panel import LiabilityPanel
from tests.conftest import Deployment, eventually
from tests.kit.cli import cli
from tests.kit.desk import connected_session, screenshot
from tests.memberkit import feed_and_sync, trip

GROUP, MEMBERS, POINTS, VALUE = range(4)


def cells(panel: LiabilityPanel, row: int) -> list[str]:
    model = panel.model
    return [model.index(row, c).data() for c in range(model.columnCount())]


def test_the_panel_shows_what_the_cli_reports_and_exports_the_same_csv(
    qloop: qasync.QEventLoop, qtbot: Any, deployment: Deployment, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    members = {f"lp{tag}-a": 100_000, f"lp{tag}-b": 50_000, f"lp{tag}-c": 7_000}
    target = deployment.target
    target.data_dir.mkdir(parents=True, exist_ok=True)
    (target.data_dir / "settings.json").write_text(json.dumps({"liability": {"rate": 0.02}}))

    async def scenario() -> None:
        async with deployment.worker("1.0"):
            for member, fare in members.items():
                await feed_and_sync(deployment.client, target, member, [trip(member, 1, fare)])
            session = await connected_session(target)
            panel = LiabilityPanel(session=session)
            qtbot.addWidget(panel)
            panel.resize(1000, 300)
            panel.show()
            assert panel.rate_spin.value() == 0.02  # the configured rate
            seen: list[tuple[int, int | None]] = []
            original = panel._on_progress

            def spy(read: int, total: int | None) -> None:
                seen.append((read, total))
                original(read, total)

            panel._on_progress = spy  # type: ignore[method-assign]

            async def all_published() -> bool | None:
                await panel.refresh()
                return (panel.report is not None and panel.report.total.points == 1_570) or None

            await eventually(all_published)
            screenshot(panel, "liability")
            code, out, err = await cli(deployment, "liability", "--by", "tier", "--json")
            assert code == 0, err
            cli_report = json.loads(out)
            assert seen[0] == (0, 3) and seen[-1] == (3, 3)
            assert panel.progress_bar.isHidden()  # shown only while it reads

            # the first row is everyone: as the CLI sums them, at the configured rate
            first = cells(panel, 0)
            assert first[GROUP] == "all"
            assert first[MEMBERS] == "3" and first[POINTS] == "1,570"
            assert first[VALUE] == "31.40 USD" and cli_report["total"]["value"] == 31.4
            tiers = {cells(panel, r)[GROUP]: cells(panel, r) for r in range(1, 5)}
            for tier, row in cli_report["by_tier"].items():
                assert tiers[tier][POINTS] == f"{row['points']:,}"
            assert "1,570 points worth 31.40 USD" in panel.summary.text()

            # export: what `liability --csv --by tier` prints, at the same rate
            path = tmp_path / "liability.csv"
            panel.export(path)
            code, out, err = await cli(deployment, "liability", "--by", "tier", "--csv")
            assert code == 0 and path.read_text() == out

            # a cancelled refresh leaves the last complete report on show
            task = panel.refresh()
            await asyncio.sleep(0)  # under way: waiting for the count
            assert panel.cancel_button.isEnabled() and not panel.refresh_button.isEnabled()
            panel._on_cancel_button_clicked()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert panel.model.rowCount() == 5 and cells(panel, 0)[POINTS] == "1,570"
            assert panel.refresh_button.isEnabled() and not panel.cancel_button.isEnabled()
            assert panel.summary.text().startswith("Cancelled")
            panel.stop()
            await session.stop()

    qloop.run_until_complete(scenario())

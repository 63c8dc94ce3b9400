"""`make screenshots`: the app offscreen against a real embedded server, with real data.

    python -m desktop.screenshots [--out docs/screenshots] [--members 40] [--events 400]

Starts the app in a fresh data dir (embedded server and worker, as `make run` does),
feeds simulated traffic, rehearses a drill (a drill build made current, more traffic,
the fixed build made current), previews, pauses, resumes and verifies the rollback
from the wizard, and saves a PNG of each step, of the replay check and audit log, of
Settings, and of every tab of the main window (the window itself while it has none),
and of the notifications (a finished rollback; proposals waiting past the threshold).
Each picture is taken in the light theme (NAME.png) and the dark one (NAME-dark.png).
Nothing is staged: every number in the pictures comes from the server.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from desktop.desk import Desk
    from desktop.releases_panel import ReleasesPanel
    from desktop.rollback_wizard import RollbackWizard

log = logging.getLogger("desktop.screenshots")

STARTUP_TIMEOUT_S = 120
ROLLBACK_TIMEOUT_S = 300
SIZE = (1280, 820)
MEMBERS_REFRESH_S = 2.0  # desktop/members_panel.py REFRESH_INTERVAL_MS
PAUSED_SHOT_RATE = 5  # resets a second: slow enough to pause part-way


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desktop.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--keep-data", action="store_true", help="keep the temp data dir")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import qasync
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop import preferences, theme
    from desktop.desk import Desk
    from runtime.connect import Target

    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    data_dir = Path(tempfile.mkdtemp(prefix="loyalty-desk-screenshots-"))
    # the pictures' own preferences and layout, not the operator's
    for kind in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(kind, QSettings.Scope.UserScope, str(data_dir / "qsettings"))
    preferences.write(preferences.Prefs(theme="light"))
    theme.apply(app, "light")
    desk = Desk(target=Target(address=None, namespace="default", data_dir=data_dir))
    shots = Shots(args.out, desk)
    try:
        with loop:
            loop.run_until_complete(_capture(desk, shots, args.members, args.events))
    finally:
        if not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
    print("\n".join(str(p) for p in shots.saved))
    return 0


class Shots:
    """Saves widgets as PNGs named after what they show, in both themes."""

    def __init__(self, out: Path, desk: Desk) -> None:
        self.out = out
        self.desk = desk
        self.saved: list[Path] = []
        out.mkdir(parents=True, exist_ok=True)

    async def save(self, widget: QWidget, name: str, *, notice: bool = False) -> None:
        """NAME.png (light) and NAME-dark.png; the window's notice shows only when
        `notice` (it would cover the panel in the other pictures)."""
        window = self.desk.window
        banner = window.notifier.banner
        if not notice:
            banner.hide()
        # switched as the operator does it: Settings > This desktop > Theme
        combo = window.settings.preferences.theme_combo
        try:
            for choice, suffix in (("light", ""), ("dark", "-dark")):
                combo.setCurrentIndex(combo.findData(choice))
                await _settle()
                path = self.out / f"{_slug(name)}{suffix}.png"
                if not widget.grab().save(str(path)):
                    raise RuntimeError(f"could not write {path}")
                self.saved.append(path)
                log.info("saved %s", path)
        finally:
            combo.setCurrentIndex(combo.findData("light"))


async def _capture(desk: Desk, shots: Shots, members: int, events: int) -> None:
    from desktop.asyncutil import wait_until

    window = desk.window
    window.resize(*SIZE)
    releases = window.releases
    desk.start()
    try:
        await wait_until(lambda: desk.session.worker_state == "running", timeout=STARTUP_TIMEOUT_S)
        ids = await _feed(desk, members, events, seed=1)
        await wait_until(
            lambda: window.members.model.rowCount() >= len(ids), timeout=60, interval=0.5
        )
        await _drill(desk, releases, members, events)
        window.show_panel("Releases")
        await _releases_views(releases, shots)
        # the members table after the repair: its periodic refresh has caught up
        await asyncio.sleep(2 * MEMBERS_REFRESH_S)
        await _decisions(desk)
        await _tabs(desk, shots)
        await _member_detail(desk, shots, ids)
        await _pending_notice(desk, shots)
    finally:
        await releases.stop()  # the drill and fixed builds' workers
        await desk.request_shutdown()


async def _feed(desk: Desk, members: int, events: int, seed: int) -> list[str]:
    from datetime import UTC, datetime, timedelta

    from runtime import feed
    from runtime.simulate import simulate

    client = desk.session.client
    assert client is not None
    start = datetime.now(UTC) - timedelta(days=120)
    batch = feed.check(enumerate(simulate(events, members, seed=seed, start=start), start=1))
    await feed.deliver(client, desk.session.target, batch)
    await feed.wait_applied(client, batch.by_member)
    return list(batch.by_member)


async def _drill(desk: Desk, releases: ReleasesPanel, members: int, events: int) -> None:
    """A drill build damages members; the fixed build takes over; the wizard previews."""
    from desktop.asyncutil import wait_until
    from desktop.rollback_wizard import AFFECTED
    from workflows.drill import drill_build_id

    base = desk.session.worker_build
    bad_release, fixed = f"{base}.1", f"{base}.2"
    bad = drill_build_id(bad_release, "zero-on-trip")
    releases.reason_edit.setText("rehearsing the zero-points incident")
    await releases.refresh()
    await releases.start_worker(bad_release, "zero-on-trip", releases.reason_edit.text())
    await releases.set_release(bad, "drill: ship the bad build", None)
    await _feed(desk, members, events // 2, seed=2)
    await releases.start_worker(fixed, None, "the fix for zero points on trips")
    await releases.set_release(fixed, "roll forward to the fixed build", None)
    await _feed(desk, members, events // 8, seed=3)
    await releases.refresh()
    releases.versions_table.clearSelection()  # a selected row would hide the drill badge
    wizard = releases.wizard
    wizard.build_combo.setCurrentIndex(max(0, wizard.build_combo.findData(bad)))
    await wizard.find_affected()
    assert wizard.step == AFFECTED
    await wait_until(lambda: bool(releases.versions_model.records), timeout=10)


async def _tabs(desk: Desk, shots: Shots) -> None:
    """Every tab of the main window, or the window itself while it has none."""
    from PySide6.QtWidgets import QTabWidget

    window = desk.window
    tabs = window.centralWidget()
    if not isinstance(tabs, QTabWidget):
        await shots.save(window, "members")
        return
    for title, panel in window.panels.items():
        tabs.setCurrentWidget(panel)
        if panel is window.settings:
            await window.settings.show_keyring()  # asked off the GUI thread: wait for it
        await shots.save(window, title)


async def _decisions(desk: Desk) -> None:
    """A few proposals decided in the Approvals panel (approved ones wait in Effects,
    no destination being set up), so both show what a working day looks like."""
    from desktop.asyncutil import wait_until

    window = desk.window
    approvals = window.approvals
    window.show_panel("Approvals")
    await approvals.refresh()
    await wait_until(lambda: approvals.model.rowCount() > 0, timeout=30)
    approvals.reason.setText("checked the member's history")
    for approve in (True, True, False, True):
        approvals.select_row(0)
        await approvals.decide_current(approve)
    await window.effects.refresh()


async def _member_detail(desk: Desk, shots: Shots, ids: list[str]) -> None:
    """A member's detail window: its ledger, and the timeline across the drill's reset."""
    from desktop.asyncutil import wait_until

    detail = desk.window.open_member(sorted(ids)[0])
    detail.resize(1150, 700)  # larger than the offscreen screen; the picture wants room
    await wait_until(lambda: detail.state_labels["points"].text() not in ("", "—"), timeout=30)
    await wait_until(lambda: detail.ledger_model.rowCount() > 0, timeout=30)
    await shots.save(detail, "member-detail-ledger")
    detail.tabs.setCurrentWidget(detail.timeline_table)
    await wait_until(lambda: detail.timeline_model.rowCount() > 0, timeout=30)
    await shots.save(detail, "member-detail-timeline")
    detail.close()


async def _pending_notice(desk: Desk, shots: Shots) -> None:
    """The notification of proposals waiting past the threshold: the agent's proposals
    from the traffic, read an hour later (the clock ages are read from)."""
    from datetime import UTC, datetime, timedelta

    from desktop.asyncutil import wait_until

    window = desk.window
    window.show_panel("Members")
    notifier = window.notifier
    told = len(notifier.history)
    later = datetime.now(UTC) + timedelta(hours=1)
    window.attention.now = lambda: later
    await wait_until(lambda: any(n.kind == "pending" for n in notifier.history[told:]), timeout=30)
    await shots.save(window, "notification-pending", notice=True)


async def _releases_views(releases: ReleasesPanel, shots: Shots) -> None:
    """The Releases panel's own tabs and the wizard's steps, in the order of the story."""
    from desktop.asyncutil import wait_until
    from desktop.rollback_wizard import PREVIEW, VERIFY

    panel = releases.window()
    wizard = releases.wizard
    releases.tabs.setCurrentWidget(wizard)
    await shots.save(panel, "releases-rollback-affected")
    wizard.next_button.click()
    await wait_until(lambda: wizard.step == PREVIEW, timeout=10)
    await shots.save(panel, "releases-rollback-preview")
    wizard.next_button.click()
    wizard.reason_edit.setText("drill: points zeroed on trips")
    wizard.rate_spin.setValue(PAUSED_SHOT_RATE)
    await wizard.execute()
    # paused part-way, as an operator would to look around; then resumed
    await wait_until(lambda: _done(wizard) > 0, timeout=ROLLBACK_TIMEOUT_S, interval=0.2)
    await wizard.control("pause")
    await wait_until(lambda: _paused(wizard), timeout=ROLLBACK_TIMEOUT_S, interval=0.2)
    await shots.save(panel, "releases-rollback-paused")
    await wizard.control("resume")
    await wait_until(lambda: wizard.step == VERIFY, timeout=ROLLBACK_TIMEOUT_S, interval=0.5)
    await shots.save(panel, "notification-rollback", notice=True)
    await shots.save(panel, "releases-rollback-verified")
    await releases.refresh()
    releases.versions_table.clearSelection()
    releases.tabs.setCurrentIndex(1)
    bad = wizard.build or ""
    await releases.run_replay_check(bad)
    await shots.save(panel, "releases-replay-check")
    releases.tabs.setCurrentIndex(2)
    await releases.load_audit()
    await shots.save(panel, "releases-audit-log")


def _done(wizard: RollbackWizard) -> int:
    progress = wizard.progress
    return progress.counts.get("reset", 0) if progress is not None else 0


def _paused(wizard: RollbackWizard) -> bool:
    progress = wizard.progress
    return (
        progress is not None
        and progress.state == "paused"
        and not progress.counts.get("resetting", 0)
    )


async def _settle() -> None:
    """Let layouts and repaints happen before grabbing: the qasync loop runs Qt's events
    while we sleep (processEvents() here would re-enter the loop from inside a task)."""
    await asyncio.sleep(0.3)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.replace("&", "and").lower()).strip("-") or "tab"


if __name__ == "__main__":
    sys.exit(main())

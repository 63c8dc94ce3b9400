"""What the rollback wizard says at each step, as plain text from the operations layer's
results (the versions, a preview, a rollback's progress)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from desktop.release_models import drill_label
from runtime.rollback_status import MemberState, RollbackState

if TYPE_CHECKING:
    from runtime.releases import RollbackPreview
    from workflows.rollback import RollbackProgress


def build_choices(versions: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, build id) of every build but the current one, drills first (the usual
    culprits), those that still run members before those that run none."""
    candidates = [v for v in versions if v["status"] != "current"]
    candidates.sort(key=lambda v: (v["drill"] is None, not v["members"], v["build_id"]))
    return [
        (
            v["build_id"]
            + (f"   [{drill_label(v['drill'])}]" if v["drill"] else "")
            + f"   ({v['members']:,} members, {v['status']})",
            v["build_id"],
        )
        for v in candidates
    ]


def affected(report: RollbackPreview) -> str:
    broken = len(report.not_repairable)
    return (
        f"Build {report.bad_build} touched {report.affected:,} of {report.scanned:,} running "
        f"members; {report.repairable:,} can be repaired"
        + (f", {broken:,} cannot (see why below)." if broken else ".")
    )


def totals(report: RollbackPreview) -> str:
    t = report.totals
    return (
        f"Totals over {report.affected:,} members: points {t.points_before:,} → "
        f"{t.points_after:,} ({t.points_after - t.points_before:+,}); lifetime "
        f"points {t.lifetime_points_before:,} → {t.lifetime_points_after:,} "
        f"({t.lifetime_points_after - t.lifetime_points_before:+,}); "
        f"{t.stake_text()}; "
        f"{report.changing:,} members change. Computed from history: nothing has "
        "been touched yet."
        + (f" The table lists the first {len(report.members):,}." if report.rows_left_out else "")
    )


def progress(p: RollbackProgress) -> str:
    detail = ", ".join(f"{k} {v}" for k, v in sorted(p.counts.items())) or "planning"
    pages = f"; page {p.pages_done:,} of {p.pages:,}" if p.preview_id else ""
    return (
        f"{p.state}: {detail}{pages}; verified {p.verified_ok}, mismatches "
        f"{max(p.mismatch_count, len(p.mismatches))}"
    )


def verification_rows(p: RollbackProgress) -> list[dict[str, Any]]:
    """The members that need a look: mismatches, then the ones that could not be repaired."""
    rows = [
        {"member_id": m["member_id"], "result": "mismatch", "details": "; ".join(m["problems"])}
        for m in p.mismatches
    ]
    return rows + [
        {"member_id": m["member_id"], "result": "not repairable", "details": m["reason"]}
        for m in p.not_repairable
    ]


def verification(p: RollbackProgress) -> str:
    cancelled = p.counts.get(MemberState.CANCELLED, 0)
    failed = p.counts.get("failed", 0)
    verdict = RollbackState(p.state).value  # done or cancelled
    return (
        f"Rollback of {p.bad_build} {verdict}: {p.verified_ok:,} members "
        f"repaired and verified, {max(p.mismatch_count, len(p.mismatches)):,} mismatches, "
        f"{p.counts.get(MemberState.NOT_REPAIRABLE, len(p.not_repairable)):,} not repairable"
        + (f", {cancelled:,} left untouched by the cancel" if cancelled else "")
        + (f", {failed:,} failed" if failed else "")
        + "."
        + (f" Stopped: {p.error}." if p.error else "")
        + (
            f" {after['affected']:,} members still carry {p.bad_build} (damaged after the"
            f" preview, or not repairable): preview {after['preview_id']} lists them, to"
            " confirm and roll back on their own."
            if (after := p.after_preview) and after["affected"]
            else ""
        )
    )

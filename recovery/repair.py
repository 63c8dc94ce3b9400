"""Finding, previewing, resetting and verifying members damaged by a bad build.

Plain async functions over a Temporal client: the CLI's dry run calls them directly
(reads only), the rollback workflow's activities wrap them (activities/rollback.py).
One entry point over the parts: recovery.damage (what a bad build touched),
recovery.plan (what a reset keeps, loses and re-delivers; the preview),
recovery.reset (the reset and the re-delivery), recovery.verify (the check after).
"""

from __future__ import annotations

from recovery.damage import (
    bounded,
    checked_damage,
    current_build,
    damage_of,
    find_damage,
    latest_reset_run,
    reset_point_for,
)
from recovery.plan import MemberPreview, Plan, live_state, plan, preview_member, repaired_plan
from recovery.reset import heal_member, replaced_runs, reset_member
from recovery.verify import agent_settled, verify_member

__all__ = [
    "MemberPreview",
    "Plan",
    "agent_settled",
    "bounded",
    "checked_damage",
    "current_build",
    "damage_of",
    "find_damage",
    "heal_member",
    "latest_reset_run",
    "live_state",
    "plan",
    "preview_member",
    "repaired_plan",
    "replaced_runs",
    "reset_member",
    "reset_point_for",
    "verify_member",
]

"""Drill builds: builds that run the real code with one deliberately injected bug.

A drill build says so in its build id: `<build>+drill-<bug>`. Workflow code looks the
bug up from the build id of the task it runs, so every worker of every build, also one
started before the drill and one replaying a drill build's tasks, reproduces the same
damage, and a drill is labelled as such wherever its build id shows.

Two kinds of bug: the rules' bugs (`DRILL_BUGS`) compute wrong numbers with the same
commands; a command bug (`UNPATCHED_COMMAND`) keeps the numbers but issues a command
that recorded histories lack, without `workflow.patched`: the change a replay check
must refuse as non-deterministic.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.rules import DRILL_BUGS, REDEEM_DRILL_BUGS

DRILL_MARK = "+drill-"
UNPATCHED_COMMAND = "unpatched-command"
COMMAND_BUGS = (UNPATCHED_COMMAND,)
# the rules' bugs that only redemptions show (a redemption applied twice, or for free)
DRILLS = (*DRILL_BUGS, *REDEEM_DRILL_BUGS, *COMMAND_BUGS)


def drill_build_id(build_id: str, bug: str) -> str:
    """The build id a drill of `bug` on top of `build_id` runs as."""
    if bug not in DRILLS:
        raise ValueError(f"unknown drill {bug!r}; choose one of: {', '.join(DRILLS)}")
    if build_id.endswith(DRILL_MARK + bug):
        return build_id
    if DRILL_MARK in build_id:
        raise ValueError(f"build {build_id!r} is already a drill of another bug")
    return f"{build_id}{DRILL_MARK}{bug}"


_candidate: list[str | None] = []


def drill_for(build_id: str | None) -> str | None:
    """The bug a build injects (None for a real build)."""
    if _candidate:
        return _candidate[-1]
    if not build_id or DRILL_MARK not in build_id:
        return None
    bug = build_id.rsplit(DRILL_MARK, 1)[1]
    return bug if bug in DRILLS else None


def rules_bug(bug: str | None) -> str | None:
    """The part of a drill the member's rules inject (None for a command bug)."""
    return bug if bug in DRILL_BUGS or bug in REDEEM_DRILL_BUGS else None


def inject_commands(bug: str | None) -> None:
    """Called on every member task that applies something; issues nothing unless the
    drill is a command bug, which adds a memo upsert (a command) to the task."""
    if bug == UNPATCHED_COMMAND:
        workflow.upsert_memo({"drill": UNPATCHED_COMMAND})


class candidate:
    """Replay as if every task had run a candidate build with `bug` (None: the fixed code).

    Only for replay checks: while it is active, the recorded build of each task no longer
    decides which drill applies.
    """

    def __init__(self, bug: str | None) -> None:
        if bug is not None and bug not in DRILLS:
            raise ValueError(f"unknown drill {bug!r}")
        self.bug = bug

    def __enter__(self) -> None:
        _candidate.append(self.bug)

    def __exit__(self, *exc: object) -> None:
        _candidate.pop()

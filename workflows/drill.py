"""Drill builds: which build ids run with a deliberately injected bug.

The registry is shared between the worker process and the sandboxed workflow code
(the worker passes this module through the sandbox). Workflow code looks the bug up
by the build id of the task it is running, so a worker of another build replaying a
drill build's tasks reproduces the same damage, and replay stays faithful.
"""

from __future__ import annotations

from workflows.rules import DRILL_BUGS

_drills: dict[str, str] = {}


def register(build_id: str, bug: str) -> None:
    if bug not in DRILL_BUGS:
        raise ValueError(f"unknown drill {bug!r}; choose one of: {', '.join(DRILL_BUGS)}")
    _drills[build_id] = bug


def drill_for(build_id: str) -> str | None:
    return _drills.get(build_id)


def registered() -> dict[str, str]:
    return dict(_drills)

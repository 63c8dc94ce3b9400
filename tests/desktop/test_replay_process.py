"""What the app makes of the replay check's output: a report, or one line saying why not."""

from __future__ import annotations

import json

import pytest

from desktop.replay_process import ReplayCheckError, parse_report

REPORT = {
    "candidate": "1.2",
    "drill": None,
    "go": False,
    "members": 1,
    "nondeterministic": 1,
    "state_differs": 0,
    "unchecked": 0,
    "results": [{"member_id": "m1", "go": False}],
}
SDK_NOISE = b"2026-01-01 WARNING temporalio.core: slow poll\n"


def test_a_no_go_is_a_report_not_a_failure() -> None:
    out = json.dumps(REPORT).encode() + b"\n"
    assert parse_report(1, out, SDK_NOISE) == REPORT


@pytest.mark.parametrize(
    ("code", "out", "reason"),
    [
        (
            1,
            b'{"error": "cannot reach Temporal at 127.0.0.1:1: connection refused"}\n',
            "The replay check failed: cannot reach Temporal at 127.0.0.1:1: connection refused",
        ),
        (-9, b"", "The replay check was killed by signal 9: 2026-01-01 WARNING"),
        (2, b"usage: ...\n", "The replay check exited with code 2: 2026-01-01 WARNING"),
        (0, b"Traceback (most recent", "The replay check printed no report (its output: Traceb"),
        (0, b'{"go": true}\n', 'The replay check printed no report (its output: {"go": true})'),
        (0, b"", "The replay check printed no report (its output: nothing)"),
    ],
)
def test_anything_else_is_a_one_line_reason(code: int, out: bytes, reason: str) -> None:
    with pytest.raises(ReplayCheckError) as failure:
        parse_report(code, out, SDK_NOISE)
    assert failure.value.reason.startswith(reason)
    assert "\n" not in failure.value.reason
    assert failure.value.log_tail == SDK_NOISE.decode().strip()

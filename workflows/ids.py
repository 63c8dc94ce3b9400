"""Workflow ids of the public contract, importable without any workflow code."""

from __future__ import annotations

MEMBER_PREFIX = "member-"


def member_workflow_id(member_id: str) -> str:
    return f"{MEMBER_PREFIX}{member_id}"


def member_id_of(workflow_id: str) -> str:
    return workflow_id.removeprefix(MEMBER_PREFIX)

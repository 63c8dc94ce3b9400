"""What the main window may ask of a panel, as Protocols mypy checks (the window used to
look features up by name with getattr, so a renamed attribute failed silently)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol, runtime_checkable

from PySide6.QtCore import SignalInstance
from PySide6.QtWidgets import QPushButton


@runtime_checkable
class PostsStatus(Protocol):
    """A panel with one-line outcomes for the window's status bar."""

    @property
    def status_posted(self) -> SignalInstance: ...


@runtime_checkable
class Stoppable(Protocol):
    """A widget with work to stop at shutdown: returns the tasks to await, or is a
    coroutine (a panel that stops child processes)."""

    def stop(self) -> list[Any] | Awaitable[None]: ...


@runtime_checkable
class Panel(PostsStatus, Stoppable, Protocol):
    """Each of the window's own tabs (a panel added from elsewhere may be less)."""


@runtime_checkable
class Refreshable(Protocol):
    """A panel F5 refreshes: by clicking its Refresh button (so a refresh in flight or
    a disabled button is respected)."""

    @property
    def refresh_button(self) -> QPushButton: ...


@runtime_checkable
class ShowsMember(Protocol):
    """A panel with a selected member: the Web UI opens at that member's workflow."""

    def selected_member_id(self) -> str: ...


__all__ = ["Panel", "PostsStatus", "Refreshable", "ShowsMember", "Stoppable"]

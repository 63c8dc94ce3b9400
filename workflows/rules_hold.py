"""The hold of MemberBook: a refund that arrives before the event it refers to waits
(bounded: HOLD_KEEP, HOLD_DAYS of event time) and applies when that event arrives.
A mixin of `workflows.rules.MemberBook`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from workflows.book import (
    HOLD_DAYS,
    HOLD_KEEP,
    MemberSnapshot,
    Outcome,
    id_key,
)
from workflows.events import Event, EventError
from workflows.isotime import iso, parse_iso


class RefundHold:
    """Refunds waiting for their event (see the module)."""

    s: MemberSnapshot
    hold: bool
    released: list[Outcome]
    _watermark: datetime | None

    if TYPE_CHECKING:

        def _apply_valid(self, event: Event, build_id: str) -> int: ...

        def _remember(self, event: Event, earned: int) -> None: ...

        def reject(self, event_id: str | None, reason: str) -> None: ...

    def _holds(self, event: Event) -> bool:
        return (
            self.hold
            and event.type == "refund"
            and event.refers_to is not None
            and id_key(event.refers_to) not in self.s.seen
        )

    def _held_as_seen(self, event_id: str) -> list[Any] | None:
        key = id_key(event_id)
        for entry in self.s.held:
            if id_key(entry["event_id"]) == key:
                return [entry["fingerprint"]]
        return None

    def _hold(self, event: Event, build_id: str) -> Outcome:
        """Keep the refund until its event arrives; a full hold rejects its oldest."""
        assert event.refers_to is not None
        self.s.held.append(
            {
                "type": event.type,
                "event_id": event.event_id,
                "member_id": event.member_id,
                "occurred_at": iso(event.occurred_at),
                "refers_to": event.refers_to,
                "fingerprint": event.fingerprint,
            }
        )
        while len(self.s.held) > HOLD_KEEP:
            oldest = self.s.held.pop(0)
            self._reject_held(
                oldest,
                f"refund held for event {oldest['refers_to']!r}, which did not arrive "
                f"before {HOLD_KEEP} refunds were waiting",
            )
        self._expire_held(build_id)
        return Outcome("held", event.event_id, event=event)

    def _release(self, event: Event, build_id: str) -> None:
        """Apply the held refunds that waited for `event`; reject those held too long."""
        if self.s.held:
            key = id_key(event.event_id)
            waiting = [e for e in self.s.held if id_key(e["refers_to"]) == key]
            if waiting:
                self.s.held = [e for e in self.s.held if id_key(e["refers_to"]) != key]
                for entry in waiting:
                    self._apply_held(entry, build_id)
            self._expire_held(build_id)

    def _apply_held(self, entry: dict[str, Any], build_id: str) -> None:
        refund = Event(
            type=entry["type"],
            event_id=entry["event_id"],
            member_id=entry["member_id"],
            occurred_at=parse_iso(entry["occurred_at"]),
            refers_to=entry["refers_to"],
            fingerprint=entry["fingerprint"],
        )
        try:
            self._apply_valid(refund, build_id)
        except EventError as error:
            self._reject_held(entry, error.reason)
            return
        self.s.events_processed += 1
        self._remember(refund, 0)
        self.released.append(Outcome("accepted", refund.event_id, event=refund))

    def _expire_held(self, build_id: str) -> None:
        if not self.s.held or self._watermark is None:
            return
        horizon = self._watermark - timedelta(days=HOLD_DAYS)
        for entry in [e for e in self.s.held if parse_iso(e["occurred_at"]) < horizon]:
            self.s.held.remove(entry)
            self._reject_held(
                entry,
                f"refund held {HOLD_DAYS} days of event time for event "
                f"{entry['refers_to']!r}, which never arrived",
            )

    def _reject_held(self, entry: dict[str, Any], reason: str) -> None:
        self.reject(entry["event_id"], reason)
        self.released.append(Outcome("rejected", entry["event_id"], reason))

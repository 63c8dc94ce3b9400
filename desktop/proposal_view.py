"""The selected proposal, whole, beside the approval queue: what a person reads before
deciding it.

The proposal's own fields show at once (the queue's row has them); the member's tier,
balance and earlier decisions follow when the member's workflow answers, read on the
event loop (never blocking the window). A member that does not answer is said so in
plain words above the text, and the proposal stays readable.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QLabel, QTextBrowser, QVBoxLayout, QWidget

from desktop import preload, theme
from desktop.asyncutil import async_slot, cancel_slot_tasks
from desktop.units import local_time_text, utc_time_text

MEMBER_MODULE = "workflows.member"  # what reading a member imports (the Agents SDK too)

if TYPE_CHECKING:
    import asyncio

    from desktop.session import Session
    from runtime.proposal_context import PastDecision, ProposalContext


class ProposalView(QWidget):
    """One proposal in full: arguments, trigger, member, earlier decisions.

    Signals: none; `show_proposal` is called when the queue's selection changes.
    """

    def __init__(self, *, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session
        self._proposal_id = ""
        self.member_status = QLabel(self)
        self.member_status.setObjectName("proposalMemberStatus")
        self.member_status.setWordWrap(True)
        self.member_status.hide()
        self.text = QTextBrowser(self)
        self.text.setObjectName("proposalText")
        self.text.setAccessibleName("Selected proposal")
        self.text.setOpenLinks(False)
        self.text.setPlaceholderText("Select a proposal to read it whole before deciding.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.member_status)
        layout.addWidget(self.text, 1)

    # -- public -------------------------------------------------------------------

    @property
    def proposal_id(self) -> str:
        return self._proposal_id

    def plain_text(self) -> str:
        return self.text.toPlainText()

    def show_proposal(self, proposal: dict[str, Any] | None) -> asyncio.Task[Any] | None:
        """Show `proposal` (a queue row) now, and read its member in the background;
        returns that reading (None when there is nothing to read)."""
        if proposal is None:
            cancel_slot_tasks(self)
            self._proposal_id = ""
            self.text.clear()
            self.member_status.hide()
            return None
        self._proposal_id = str(proposal.get("id") or "")
        self._set_status("Reading the member…", "muted")
        self.text.setHtml(_document(_context_of_row(proposal), loading=True))
        return self._load(proposal)

    def stop(self) -> list[asyncio.Task[Any]]:
        return cancel_slot_tasks(self)

    # -- loading --------------------------------------------------------------------

    @async_slot(overlap="restart", errors="status")
    async def _load(self, proposal: dict[str, Any]) -> None:
        await preload.ready(MEMBER_MODULE)  # never on the GUI thread
        from runtime.proposal_context import proposal_context

        client = self._session.client
        if client is None:
            self._set_status("Not connected to Temporal yet: the member is not read", "bad")
            return
        context = await proposal_context(client, proposal)
        if context.proposal_id != self._proposal_id:
            return  # another proposal was selected meanwhile
        if context.member_answered:
            self.member_status.hide()
        else:
            self._set_status(context.member_problem or "the member did not answer", "bad")
        scroll = self.text.verticalScrollBar().value()
        self.text.setHtml(_document(context, loading=False))
        self.text.verticalScrollBar().setValue(scroll)

    def _set_status(self, text: str, tone: str) -> None:
        self.member_status.setText(text)
        theme.set_tone(self.member_status, tone)
        self.member_status.show()


def _context_of_row(proposal: dict[str, Any]) -> ProposalContext:
    from runtime.proposal_context import from_record  # light: no workflow code runs

    return from_record(proposal)


def _arguments_html(action: str, arguments: dict[str, Any]) -> str:
    if not arguments:
        return "<i>none</i>"
    rows = []
    for key, value in arguments.items():
        if isinstance(value, int) and not isinstance(value, bool):
            shown = f"{value:,}"
        elif isinstance(value, str):
            shown = value
        else:
            shown = json.dumps(value, ensure_ascii=False, sort_keys=True)
        # the whole value, line breaks kept: a message is read as the member will
        rows.append(f"<b>{_e(key)}</b>: {_e(shown).replace(chr(10), '<br>')}")
    return "<br>".join(rows)


def _when(value: Any) -> str:
    local = local_time_text(value)
    return f'<span title="{_e(utc_time_text(value))}">{_e(local)}</span>' if local else ""


def _document(context: ProposalContext, *, loading: bool) -> str:
    parts = [
        f"<h3>{_e(context.action)} <small>({_e(context.status)})</small></h3>",
        f"<p>{_arguments_html(context.action, context.arguments)}</p>",
        f"<p><b>Agent's reason</b>: {_e(context.agent_reason) or '<i>none given</i>'}</p>",
    ]
    trigger = context.trigger
    if trigger is not None:
        parts.append(
            f"<p><b>Triggered by</b> the {_e(trigger.kind)} <tt>{_e(trigger.event_id)}</tt>"
            + (f" (key <tt>{_e(trigger.key)}</tt>)" if trigger.key != trigger.event_id else "")
            + "</p>"
        )
        if trigger.detail:
            parts.append(f"<blockquote>{_e(trigger.detail)}</blockquote>")
    else:
        parts.append("<p><b>Triggered by</b>: <i>not recorded</i></p>")
    meta = [
        f"Proposed {_when(context.created_at)}" if context.created_at else "",
        f"expires {_when(context.expires_at)}" if context.expires_at else "",
        f"by {_e(context.model)}" if context.model else "",
    ]
    parts.append("<p>" + " · ".join(m for m in meta if m) + "</p>")
    if context.digest:
        parts.append(f"<p>Content digest <tt>{_e(context.digest)}</tt></p>")
    parts.append(f"<p>Proposal <tt>{_e(context.proposal_id)}</tt></p>")
    parts.append(f"<h4>Member {_e(context.member_id)}</h4>")
    if context.member_answered:
        balance = f"{context.points:,} points" if context.points is not None else "unknown"
        parts.append(
            f"<p>Tier <b>{_e(context.tier or 'unknown')}</b> · balance <b>{balance}</b></p>"
        )
        parts.append(_history_html(context.history))
    elif loading:
        tier = f"Tier {_e(context.tier)} (from the queue) · " if context.tier else ""
        parts.append(f"<p>{tier}reading the member…</p>")
    else:
        parts.append(
            "<p><i>The member did not answer: tier, balance and earlier decisions are unknown.</i></p>"
        )
    return "\n".join(parts)


def _history_html(history: tuple[PastDecision, ...]) -> str:
    if not history:
        return "<p>No earlier decisions for this member.</p>"
    rows = [
        "<tr><th align=left>When</th><th align=left>Action</th><th align=left>Decision</th>"
        "<th align=left>By</th><th align=left>Reason</th></tr>"
    ]
    for past in history:
        arguments = ", ".join(f"{k}={v}" for k, v in past.arguments.items())
        who = past.decided_by or ""
        if past.policy:
            who += f" (policy {past.policy})"
        rows.append(
            f"<tr><td>{_when(past.decided_at)}</td>"
            f"<td>{_e(past.action)}{' ' + _e(arguments) if arguments else ''}</td>"
            f"<td>{_e(past.status)}</td><td>{_e(who)}</td><td>{_e(past.reason or '')}</td></tr>"
        )
    return (
        "<p><b>Earlier decisions</b> (most recent first)</p>"
        "<table cellspacing=0 cellpadding=3>" + "".join(rows) + "</table>"
    )


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)

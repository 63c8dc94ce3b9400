"""The Effects panel on a real server: an approved message with no destination set up
is listed as waiting, with the reason, counted, its decision time in the operator's time
zone (UTC on hover); filtered to another member it is not listed."""

from __future__ import annotations

from typing import Any

import qasync

from desktop.effects_panel import EffectsPanel
from desktop.units import local_time_text, utc_time_text
from tests.agent.conftest import AgentDeployment, agents, new_member  # noqa: F401
from tests.effects.kit import approved_message, effect_of
from tests.kit.desk import connected_session

STATUS, KIND, MEMBER, ATTEMPTS, DECIDED, ANSWER, EFFECT = range(7)


def test_an_undelivered_effect_is_listed_with_its_reason_count_and_local_time(
    qloop: qasync.QEventLoop,
    qtbot: Any,
    agents: AgentDeployment,  # noqa: F811
) -> None:
    member = new_member()

    async def scenario() -> None:
        async with agents.worker():
            await approved_message(agents, member)
            waiting = await effect_of(agents, member, "pending")
            session = await connected_session(agents.deployment.target)
            panel = EffectsPanel(session=session)
            qtbot.addWidget(panel)
            panel.show()
            panel.member_filter.setText(member)
            await panel.refresh()
            assert panel.table.rowCount() == 1
            cell = [panel.table.item(0, c).text() for c in range(7)]
            assert (cell[STATUS], cell[KIND], cell[MEMBER]) == ("pending", "message", member)
            assert "no destination is configured for message" in cell[ANSWER]
            assert cell[EFFECT] == waiting["effect_id"]
            decided = panel.table.item(0, DECIDED)
            assert decided.text().startswith(local_time_text(waiting["decided_at"]) + " by ")
            assert decided.toolTip() == utc_time_text(waiting["decided_at"])
            assert panel.count_label.text().startswith("1 pending (undelivered) · 0 delivered")
            panel.member_filter.setText(new_member())  # someone with no effects
            await panel.refresh()
            assert panel.table.rowCount() == 0
            panel.stop()
            await session.stop()

    qloop.run_until_complete(scenario())

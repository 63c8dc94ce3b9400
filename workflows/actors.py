"""Who may be named as the actor of a decision or an adjustment sent by a client.

The member workflow names itself with reserved actors: `policy:auto-approve-small-grants`
(the auto-approval policy), `system:expiry` (an expired proposal), `guardrail` (a draft
refused on the spot). A client naming one of them would forge a decision the desk never
made, so the member's update validators refuse them; a person decides, and a bulk
decision by policy names the person as actor and the policy in its own `policy` field.

Pure: read by the member workflow's validators and by the clients, which refuse first.
"""

from __future__ import annotations

import re
import unicodedata

RESERVED_NAMES = frozenset({"guardrail", "system", "policy"})
# `policy:...`, `system:...`, also spelled with a full-width colon or spaces before it
_RESERVED_PREFIX = re.compile(r"^(policy|system)\s*:")


def _plain(actor: str) -> str:
    """The name as a reader sees it: compatibility forms folded, invisible characters
    (zero-width spaces and the like) dropped, case ignored."""
    folded = unicodedata.normalize("NFKC", actor)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf").strip().casefold()


def reserved_actor_problem(actor: str) -> str | None:
    """Why a client may not act under this name (one line), or None."""
    plain = _plain(actor)
    if plain in RESERVED_NAMES or _RESERVED_PREFIX.match(plain):
        return (
            f"the actor {actor.strip()!r} is reserved for the desk itself (policies, "
            "guardrails, the system): name the person who decides"
        )
    return None

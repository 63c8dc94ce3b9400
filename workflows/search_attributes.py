"""Custom search attributes the app registers on every server it uses.

The members table and the approvals queue are visibility queries over these, never
scans of workflow state.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TIER = SearchAttributeKey.for_keyword("LoyaltyTier")
POINTS = SearchAttributeKey.for_int("LoyaltyPoints")
LAST_EVENT_AT = SearchAttributeKey.for_datetime("LoyaltyLastEventAt")
PENDING_PROPOSALS = SearchAttributeKey.for_int("LoyaltyPendingProposals")
DRILL = SearchAttributeKey.for_keyword("LoyaltyDrill")
ROLLBACK_STATE = SearchAttributeKey.for_keyword("LoyaltyRollbackState")
# effects of approved proposals (workflows/effects.py): pending | delivered | failed
EFFECT_STATUS = SearchAttributeKey.for_keyword("LoyaltyEffectStatus")
EFFECT_KIND = SearchAttributeKey.for_keyword("LoyaltyEffectKind")
EFFECT_MEMBER = SearchAttributeKey.for_keyword("LoyaltyEffectMember")

ALL_KEYS = (
    TIER,
    POINTS,
    LAST_EVENT_AT,
    PENDING_PROPOSALS,
    DRILL,
    ROLLBACK_STATE,
    EFFECT_STATUS,
    EFFECT_KIND,
    EFFECT_MEMBER,
)

# as `temporal server start-dev --search-attribute NAME=TYPE` spells the types
_CLI_TYPE = {"KEYWORD": "Keyword", "INT": "Int", "DATETIME": "Datetime"}
SEARCH_ATTRIBUTE_TYPES: dict[str, str] = {
    key.name: _CLI_TYPE[key.indexed_value_type.name] for key in ALL_KEYS
}

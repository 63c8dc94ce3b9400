"""Custom search attributes the app registers on every server it uses.

The members table and the approvals queue are visibility queries over these, never
scans of workflow state.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

SEARCH_ATTRIBUTE_TYPES: dict[str, str] = {
    "LoyaltyTier": "Keyword",
    "LoyaltyPoints": "Int",
    "LoyaltyLastEventAt": "Datetime",
    "LoyaltyPendingProposals": "Int",
    "LoyaltyDrill": "Keyword",
    "LoyaltyRollbackState": "Keyword",
}

TIER = SearchAttributeKey.for_keyword("LoyaltyTier")
POINTS = SearchAttributeKey.for_int("LoyaltyPoints")
LAST_EVENT_AT = SearchAttributeKey.for_datetime("LoyaltyLastEventAt")
PENDING_PROPOSALS = SearchAttributeKey.for_int("LoyaltyPendingProposals")
DRILL = SearchAttributeKey.for_keyword("LoyaltyDrill")
ROLLBACK_STATE = SearchAttributeKey.for_keyword("LoyaltyRollbackState")

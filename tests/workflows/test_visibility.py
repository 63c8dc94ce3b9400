"""The one rule for composing visibility queries (workflows/visibility.py), case by case;
tests/rollback/test_scope.py tries the attacks on the real server."""

from __future__ import annotations

import pytest

from workflows.visibility import QueryError, all_of, check_fragment, literal


@pytest.mark.parametrize(
    "fragment",
    [
        "LoyaltyTier = 'x') OR (WorkflowId STARTS_WITH 'member-'",  # the attack
        "x') OR (WorkflowId STARTS_WITH 'member-'",
        "1 = 1) OR (1 = 1",
        "LoyaltyTier = 'x' /* ( */ ) OR ( /* ) */ 1 = 1",  # a parenthesis hidden in comments
        "LoyaltyTier = 'x' -- comment",
        "LoyaltyTier = 'x' # comment",
        "LoyaltyTier = 'x",  # an open quote swallows the closing parenthesis
        'LoyaltyTier = "x',
        "`LoyaltyTier = 'x'",
        "LoyaltyTier = 'x\\'",  # the backslash escapes the quote: still open
        "(LoyaltyTier = 'x'",
        "LoyaltyTier = 'x' \\ OR 1 = 1",
        "LoyaltyTier = 'x'; DROP",
        "`a\\` = 1",
    ],
)
def test_fragments_that_could_change_the_scope_are_refused(fragment: str) -> None:
    with pytest.raises(QueryError):
        check_fragment(fragment)
    with pytest.raises(QueryError):
        all_of("WorkflowType = 'MemberWorkflow'", fragment)


@pytest.mark.parametrize(
    "fragment",
    [
        "LoyaltyTier = 'Gold'",
        "LoyaltyTier = 'Gold' OR (LoyaltyPoints > 10 AND LoyaltyTier = 'Blue')",
        "WorkflowId = 'member-a)b'",  # parentheses inside quotes are text
        "WorkflowId = 'it''s'",
        "WorkflowId = 'a\\')'",  # an escaped quote, as the server reads it
        'LoyaltyTier = "Gold"',
        "`LoyaltyTier` = 'Gold'",
        "WorkflowId IN ('member-a', 'member-b')",
    ],
)
def test_balanced_fragments_pass(fragment: str) -> None:
    assert check_fragment(f"  {fragment} ") == fragment
    assert all_of("A = 1", fragment) == f"(A = 1) AND ({fragment})"


def test_blank_parts_are_skipped() -> None:
    assert all_of(None, "  ", "") is None
    assert all_of("A = 1", None) == "(A = 1)"


def test_literal_escapes_what_would_end_it() -> None:
    assert literal("a'b\\c") == "'a\\'b\\\\c'"
    assert check_fragment(f"WorkflowId = {literal(chr(39) + ') OR (1 = 1')}")

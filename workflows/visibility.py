"""Composing visibility queries from parts people type: one place, one rule.

Every part is put in parentheses and joined with AND, so a fragment narrows the
scope it is added to and never widens it. Parentheses alone do not do that: the
fragment `LoyaltyTier = 'x') OR (WorkflowId STARTS_WITH 'member-'` closes the
parenthesis it was put in, and `scope AND (...) OR (...)` lists every member. So a
fragment must also be balanced the way the server reads it (its SQL tokenizer):

- quotes close: '...' and "..." (a backslash escapes the next character, a doubled
  quote is a quote) and `...` (no backslash escapes);
- parentheses outside quotes never close more than they opened, and all close;
- no comments outside quotes (`--`, `#`, `/*`): the server skips them, so they could
  hide a parenthesis from this check; no backslash outside quotes or inside `...`.

Pure (no I/O): runtime, activities and the desktop all compose through here.
"""

from __future__ import annotations

MAX_FRAGMENT = 4_000


class QueryError(ValueError):
    """A query fragment that could change the scope it is added to; one line for people."""


def check_fragment(fragment: str) -> str:
    """The fragment, stripped, if it is safe to put inside parentheses; else QueryError."""
    text = fragment.strip()
    if len(text) > MAX_FRAGMENT:
        raise QueryError(f"the query is longer than {MAX_FRAGMENT:,} characters")
    depth = 0
    quote: str | None = None
    i = 0
    while i < len(text):
        char = text[i]
        if quote is not None:
            if char == "\\":
                if quote == "`":
                    raise QueryError("a backslash inside `...` is not allowed in a query")
                i += 2  # the escaped character, whatever it is, stays in the string
                continue
            if char == quote:
                quote = None
            i += 1
            continue
        if char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"the query closes a parenthesis it did not open (column {i + 1})")
        elif char == "\\":
            raise QueryError(f"a backslash outside quotes is not allowed (column {i + 1})")
        elif char == "#" or text.startswith(("--", "/*"), i):
            raise QueryError(f"comments are not allowed in a query (column {i + 1})")
        elif char == ";" or (char < " " and char not in "\t\n\r"):
            raise QueryError(f"the query has a {char!r} (column {i + 1})")
        i += 1
    if quote is not None:
        raise QueryError(f"the query leaves a {quote} quote open")
    if depth:
        raise QueryError(f"the query leaves {depth} parenthesis(es) open")
    return text


def all_of(*parts: str | None) -> str | None:
    """The parts (blank ones skipped), each checked and parenthesised, joined by AND."""
    kept = [check_fragment(p) for p in parts if p and p.strip()]
    if not kept:
        return None
    if len(kept) == 1:
        return f"({kept[0]})"
    return " AND ".join(f"({p})" for p in kept)


def literal(value: str) -> str:
    """A value as a quoted string in a query (a quote or backslash in it escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

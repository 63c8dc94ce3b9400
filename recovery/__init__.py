"""Recovering members from a bad build: reading their histories, rebuilding their books,
planning and carrying out the repair, and verifying it. A plain library (no
activities, no Qt): the rollback activities, the CLI and the window use it."""

"""Agent and approvals subcommands (`approvals`, `secrets`, `costs`)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add this capability's subcommands to the `loyalty-desk` parser."""

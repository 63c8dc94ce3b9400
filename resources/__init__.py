"""The app's files that are not code: icon, themes, desktop entry, AppStream metainfo
and the reward catalogue.

They ship inside the package (pyproject.toml's package-data), so a wheel or a pipx
install finds them next to this module; `path(name)` is the one way to reach them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

APP_ID = "io.github.loyalty_desk.LoyaltyDesk"
APP_NAME = "Loyalty Desk"
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
THEMES = ("light", "dark")

_HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """The bundled file `name`; FileNotFoundError names it when it is missing."""
    found = _HERE / name
    if not found.is_file():
        raise FileNotFoundError(f"{name} is not among the app's resources ({_HERE})")
    return found


def icon_png(size: int) -> Path:
    return path(f"icon-{size}.png")


@cache
def rewards() -> dict[str, dict[str, Any]]:
    """The reward catalogue of this build (rewards.json), as reward id -> entry,
    checked by workflows.rules_redeem.parse_catalogue (ValueError names a bad entry)."""
    from workflows.rules_redeem import parse_catalogue

    return parse_catalogue(json.loads(path("rewards.json").read_text(encoding="utf-8")))

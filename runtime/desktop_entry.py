"""`loyalty-desk install-desktop-entry` and `--version`: the app as the desktop sees it.

The entry, the AppStream metainfo and the icons ship inside the package (resources/);
installing copies them into the user's XDG data folder, with the entry's Exec pointing
at this installation's `loyalty-desk`, so launchers, task switchers and software
centres show the app by name and icon.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

import resources

VERSION_TIMEOUT_S = 10


def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share."""
    configured = os.environ.get("XDG_DATA_HOME")
    return Path(configured) if configured else Path.home() / ".local" / "share"


@dataclass(frozen=True)
class Installed:
    entry: Path
    metainfo: Path
    icons: list[Path]


def launcher() -> str:
    """The absolute path of this installation's `loyalty-desk` script."""
    name = "loyalty-desk.exe" if sys.platform == "win32" else "loyalty-desk"
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which("loyalty-desk")
    return found or "loyalty-desk"


def install(home: Path | None = None, executable: str | None = None) -> Installed:
    """Entry, metainfo and icons into `home` (the XDG data folder); returns the paths."""
    home = home or data_home()
    app_id = resources.APP_ID
    command = executable or launcher()
    applications = home / "applications"
    applications.mkdir(parents=True, exist_ok=True)
    entry = applications / f"{app_id}.desktop"
    lines = []
    for line in resources.path(f"{app_id}.desktop").read_text(encoding="utf-8").splitlines():
        if line.startswith(("Exec=", "TryExec=")):
            key = line.split("=", 1)[0]
            line = f"{key}={_desktop_quote(command)}" if key == "Exec" else f"{key}={command}"
        lines.append(line)
    entry.write_text("\n".join(lines) + "\n", encoding="utf-8")
    metainfo_dir = home / "metainfo"
    metainfo_dir.mkdir(parents=True, exist_ok=True)
    metainfo = metainfo_dir / f"{app_id}.metainfo.xml"
    shutil.copyfile(resources.path(f"{app_id}.metainfo.xml"), metainfo)
    icons: list[Path] = []
    hicolor = home / "icons" / "hicolor"
    for size in resources.ICON_SIZES:
        folder = hicolor / f"{size}x{size}" / "apps"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{app_id}.png"
        shutil.copyfile(resources.icon_png(size), target)
        icons.append(target)
    scalable = hicolor / "scalable" / "apps"
    scalable.mkdir(parents=True, exist_ok=True)
    svg = scalable / f"{app_id}.svg"
    shutil.copyfile(resources.path("icon.svg"), svg)
    icons.append(svg)
    _refresh_caches(applications, hicolor)
    return Installed(entry=entry, metainfo=metainfo, icons=icons)


def _desktop_quote(command: str) -> str:
    """An Exec value: quoted when the path has characters the spec reserves."""
    if any(c in command for c in " \t\"'\\><~|&;$*?#()`"):
        escaped = command.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
        escaped = escaped.replace("$", "\\$")
        return f'"{escaped}"'
    return command


def _refresh_caches(applications: Path, hicolor: Path) -> None:
    """Desktops that cache entries and icons see the new ones now (best effort)."""
    for command in (
        ["update-desktop-database", str(applications)],
        ["gtk-update-icon-cache", "--quiet", "--ignore-theme-index", str(hicolor)],
    ):
        if shutil.which(command[0]):
            subprocess.run(command, check=False, capture_output=True, timeout=30)


def app_version() -> str:
    try:
        return package_version("loyalty-desk")
    except PackageNotFoundError:
        return "unknown (not installed)"


def temporal_version() -> str:
    """What the bundled `temporal` CLI says of itself (CLI, server and UI versions)."""
    from runtime.server import ServerError, find_temporal_binary

    try:
        binary = find_temporal_binary()
    except ServerError as error:
        return f"not found ({error})"
    try:
        done = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{binary} did not answer ({error})"
    text = done.stdout.strip().splitlines()
    return text[0] if done.returncode == 0 and text else f"{binary} failed ({done.returncode})"


def version_text() -> str:
    """loyalty-desk's build and the bundled Temporal server's version, one per line."""
    build = app_version()
    return f"loyalty-desk {build} (worker build {build})\n{temporal_version()}"

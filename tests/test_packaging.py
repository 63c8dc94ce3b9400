"""The app installs like one: the wheel carries the icon, themes, desktop entry and
metainfo; its entry point starts headless (`--version`) from the installed copy;
`install-desktop-entry` puts a working entry in the user's applications folder."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import resources

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def headless_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("PYTHONPATH", None)
    return env | extra


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel .` builds from this checkout, offline (no build isolation)."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "src"
    # a copy without the venv and caches: the build must not write into the checkout
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "*.egg-info", "build", "dist", "__pycache__", ".*_cache", "docs"
        ),
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (built,) = out.glob("loyalty_desk-*.whl")
    return built


def test_the_wheel_carries_the_resources(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "resources/__init__.py",
        "resources/icon.svg",
        "resources/theme.qss",
        f"resources/{resources.APP_ID}.desktop",
        f"resources/{resources.APP_ID}.metainfo.xml",
        *(f"resources/theme-{name}.json" for name in resources.THEMES),
        *(f"resources/icon-{size}.png" for size in resources.ICON_SIZES),
    }
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert "desktop/theme.py" in names and "runtime/desktop_entry.py" in names
    # the same bytes as in the checkout
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("resources/icon.svg") == (ROOT / "resources" / "icon.svg").read_bytes()


def test_the_installed_entry_point_starts_headless(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    script = target / "bin" / "loyalty-desk"
    assert script.is_file()
    # run from elsewhere, with the installed copy first on the path (no display at all)
    env = headless_env(PYTHONPATH=str(target))
    version = subprocess.run(
        [str(script), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert version.returncode == 0, version.stderr
    lines = version.stdout.splitlines()
    release = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert lines[0] == f"loyalty-desk {release} (worker build {release})"
    assert lines[1].startswith("temporal version 1.9.1 (Server 1.32.")
    # it was the wheel's copy that ran, and it found its resources inside it
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resources, desktop.theme as t; print(resources.path('theme.qss'));"
            "print(sorted(t.load('dark').status) == sorted(t.load('light').status))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=env | {"QT_QPA_PLATFORM": "offscreen"},
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.splitlines() == [str(target / "resources" / "theme.qss"), "True"]


def test_install_desktop_entry_puts_entry_icons_and_metainfo_in_place(tmp_path: Path) -> None:
    home = tmp_path / "share"
    done = subprocess.run(
        [str(VENV_BIN / "loyalty-desk"), "install-desktop-entry"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=headless_env(XDG_DATA_HOME=str(home)),
    )
    assert done.returncode == 0, done.stderr
    entry_path = home / "applications" / f"{resources.APP_ID}.desktop"
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(entry_path, encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Name"] == "Loyalty Desk" and section["Type"] == "Application"
    assert section["Icon"] == resources.APP_ID
    # Exec points at this installation's launcher, which runs
    exec_path = Path(section["Exec"])
    assert exec_path.is_absolute() and os.access(exec_path, os.X_OK)
    version = subprocess.run(
        [str(exec_path), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=headless_env(),
    )
    assert version.returncode == 0 and version.stdout.startswith("loyalty-desk ")
    for size in resources.ICON_SIZES:
        assert (home / "icons/hicolor" / f"{size}x{size}/apps/{resources.APP_ID}.png").is_file()
    assert (home / "icons/hicolor/scalable/apps" / f"{resources.APP_ID}.svg").is_file()
    metainfo = (home / "metainfo" / f"{resources.APP_ID}.metainfo.xml").read_text()
    assert f"<id>{resources.APP_ID}</id>" in metainfo
    assert f'<launchable type="desktop-id">{resources.APP_ID}.desktop</launchable>' in metainfo
    # installing again replaces, never duplicates
    again = subprocess.run(
        [str(VENV_BIN / "loyalty-desk"), "install-desktop-entry"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=headless_env(XDG_DATA_HOME=str(home)),
    )
    assert again.returncode == 0
    assert [p.name for p in (home / "applications").iterdir()] == [f"{resources.APP_ID}.desktop"]

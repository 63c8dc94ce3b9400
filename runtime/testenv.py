"""Run a command with a real, unlocked keyring: `python -m runtime.testenv CMD ...`.

Tests use the OS keyring for real. On a headless Linux box that means a D-Bus
session with gnome-keyring's secret service; when the machine has both and no
session is running yet, the command runs inside a fresh one. Otherwise it runs
as it is (a desktop session already provides a keyring).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m runtime.testenv COMMAND [ARGS...]", file=sys.stderr)
        return 2
    have_session = bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS"))
    dbus = shutil.which("dbus-run-session")
    daemon = shutil.which("gnome-keyring-daemon")
    if have_session or not dbus or not daemon:
        os.execvp(argv[0], argv)
    # the daemon starts locked; unlocking with a throwaway password makes the
    # secret service usable without a prompt
    script = (
        f"echo -n loyalty-desk-test | {shlex.quote(daemon)} --unlock --components=secrets "
        f">/dev/null 2>&1; exec {shlex.join(argv)}"
    )
    os.execv(dbus, [dbus, "--", "sh", "-c", script])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

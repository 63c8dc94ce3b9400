"""One place turns a connection target into the options of our command line: what the
app gives the children it spawns (worker, replay check) must name the same target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cli import _defaults, build_parser
from runtime.cliutil import target_argv, target_of
from runtime.connect import Target, Tls

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_target_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ADDRESS",
        "NAMESPACE",
        "DATA_DIR",
        "TASK_QUEUE",
        "DEPLOYMENT",
        "TLS",
        "TLS_CA",
        "TLS_CERT",
        "TLS_KEY",
        "TLS_SERVER_NAME",
        "API_KEY",
    ):
        monkeypatch.delenv(f"LOYALTY_DESK_{name}", raising=False)


def _parsed(argv: list[str]) -> Target:
    return target_of(_defaults(build_parser().parse_args(["worker", *argv])))


@pytest.mark.parametrize(
    "shape",
    ["plain", "tls", "mtls-and-api-key", "api-key-without-tls"],
)
def test_a_target_survives_the_trip_through_argv(tmp_path: Path, shape: str) -> None:
    certs = tmp_path / "certs"
    tls = {
        "plain": None,
        "tls": Tls(ca=certs / "ca.pem", server_name="temporal.example"),
        "mtls-and-api-key": Tls(cert=certs / "me.pem", key=certs / "me.key"),
        "api-key-without-tls": None,
    }[shape]
    target = Target(
        address="temporal.example:7233",
        namespace="loyalty-prod",
        data_dir=tmp_path / "data dir",  # a space: one argument, not two
        task_queue="tq-argv",
        deployment="dep-argv",
        tls=tls,
        use_api_key=shape in ("mtls-and-api-key", "api-key-without-tls"),
    )
    assert _parsed(target_argv(target)) == target


def test_the_embedded_servers_address_is_given_when_the_target_names_none(
    tmp_path: Path,
) -> None:
    target = Target(address=None, namespace="default", data_dir=tmp_path)
    back = _parsed(target_argv(target, address="unix:///run/temporal.sock"))
    assert back.address == "unix:///run/temporal.sock"
    assert back.data_dir == tmp_path


def test_the_child_process_code_imports_without_posix_only_modules() -> None:
    """Windows has no fcntl (nor a parent-death signal): the server, the workers and the
    replay check must at least import there, and fail later with a reason."""
    code = (
        "import sys\n"
        "sys.modules['fcntl'] = None\n"  # `import fcntl` now raises ImportError
        "import runtime.server, runtime.server_run, runtime.workers, runtime.cli\n"
        "import desktop.worker_process, desktop.replay_process\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr

"""Runs the embedded Temporal server in a network of its own, reached through a socket
file only its owner can open.

`temporal server start-dev` opens seven TCP ports (gRPC, an HTTP API, metrics, the
history, matching and worker services, the Web UI) and none asks who is calling: on the
machine's loopback any web page could POST to the HTTP API and any local user could use
them all. Here they are bound inside a new network namespace, whose loopback no other
process sees. The one way in is `--socket`, a Unix socket created 0600 in the (0700) data
dir, forwarded to the gRPC port inside; `--ui-port` also forwards a loopback port of the
machine to the Web UI inside, when the operator asks for the UI.

    python private_net.py --socket PATH --port N [--ui-port N] -- temporal server ...
    python private_net.py --probe      # exit 0 if this machine allows it

As root the namespace needs no more; as another user it comes with a user namespace
that maps the user to itself (Linux 3.8+, unless the distribution forbids unprivileged
user namespaces: then `--probe` fails and the supervisor says so).

A standalone script (standard library only): the supervisor runs it by path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Awaitable, Callable

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
PR_SET_PDEATHSIG = 1
# The exit code that says: this machine does not allow a private network.
NO_PRIVATE_NETWORK = 3
CHUNK = 256 * 1024


def enter_private_network() -> None:
    """Move this (single-threaded) process into a new network namespace, loopback up."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    # Root needs no user namespace, unless it lacks CAP_SYS_ADMIN (a container's root).
    with_user = uid != 0 or libc.unshare(CLONE_NEWNET) != 0
    if with_user and libc.unshare(CLONE_NEWNET | CLONE_NEWUSER) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"unshare: {os.strerror(error)}")
    if with_user:
        # Ourselves only: the same uid and gid inside, no other user mapped.
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags_now = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags_now | IFF_UP))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.transport.abort()


def _forward_to(
    port: int,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            inner_reader, inner_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.transport.abort()
            return
        for w in (writer, inner_writer):
            sock = w.get_extra_info("socket")
            if sock is not None and sock.family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.gather(_pipe(reader, inner_writer), _pipe(inner_reader, writer))
        finally:
            writer.close()
            inner_writer.close()

    return forward


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


async def serve(
    args: argparse.Namespace, ui_listener: socket.socket | None, child: subprocess.Popen[bytes]
) -> int:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.socket)  # a socket file left by a killed predecessor
    # The socket appears once the server listens: whoever finds it can talk to the server.
    while child.poll() is None:
        try:
            _, probe = await asyncio.open_connection("127.0.0.1", args.port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        probe.close()
        break
    grpc = await asyncio.start_unix_server(_forward_to(args.port), path=args.socket)
    os.chmod(args.socket, 0o600)
    servers = [grpc]
    if ui_listener is not None:
        servers.append(await asyncio.start_server(_forward_to(args.ui_port), sock=ui_listener))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # The supervisor signals our whole process group: the server gets it too and
        # decides; we go when it has gone.
        loop.add_signal_handler(sig, lambda: None)
    try:
        return await asyncio.to_thread(child.wait)
    finally:
        for server in servers:
            server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.socket)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="private_net")
    parser.add_argument("--probe", action="store_true")
    parser.add_argument("--socket")
    parser.add_argument("--port", type=int)
    parser.add_argument("--ui-port", type=int)
    parser.add_argument("command", nargs="*")
    args = parser.parse_args(argv)
    os.umask(0o077)
    ui_listener = None
    if args.ui_port:
        # Bound before we leave: this socket stays on the machine's loopback.
        ui_listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ui_listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            ui_listener.bind(("127.0.0.1", args.ui_port))
        except OSError as error:
            reason = (error.strerror or str(error)).lower()  # as the server says it
            print(f"private_net: Web UI port {args.ui_port}: {reason}", file=sys.stderr)
            return 1
        ui_listener.listen(64)
    try:
        enter_private_network()
    except OSError as error:
        print(f"private_net: no private network on this machine: {error}", file=sys.stderr)
        return NO_PRIVATE_NETWORK
    if args.probe:
        return 0
    if not (args.socket and args.port and args.command):
        parser.error("--socket, --port and a command are required")
    child = subprocess.Popen(args.command, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    code = asyncio.run(serve(args, ui_listener, child))
    if code < 0:  # killed by a signal: end the same way, so the supervisor can tell
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main())

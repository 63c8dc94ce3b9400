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
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

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


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy until end of stream, then pass the end on. Blocking calls in a thread of
    its own: a few connections (one per client process), and far less processor time
    per message than an event loop."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)  # the other direction ends too
            source.shutdown(socket.SHUT_RDWR)


def _forward(outer: socket.socket, port: int) -> None:
    with outer:
        try:
            inner = socket.create_connection(("127.0.0.1", port))
        except OSError:
            return
        with inner:
            inner.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if outer.family == socket.AF_INET:
                outer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            back = threading.Thread(target=_pipe, args=(inner, outer), daemon=True)
            back.start()
            _pipe(outer, inner)
            back.join()


def _accept_forever(listener: socket.socket, port: int) -> None:
    while True:
        try:
            outer, _ = listener.accept()
        except OSError:
            return  # closed: we are going
        threading.Thread(target=_forward, args=(outer, port), daemon=True).start()


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))


def _when_listening(port: int, child: subprocess.Popen[bytes]) -> None:
    """Return once the server accepts on `port` (or has exited)."""
    while child.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            time.sleep(0.05)


def serve(
    args: argparse.Namespace, ui_listener: socket.socket | None, child: subprocess.Popen[bytes]
) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # The supervisor signals our whole process group: the server gets it too and
        # decides; we go when it has gone.
        signal.signal(sig, lambda *_: None)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(args.socket)  # a socket file left by a killed predecessor
    # The socket appears once the server listens: whoever finds it can talk to the server.
    _when_listening(args.port, child)
    grpc = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    grpc.bind(args.socket)  # created 0600 (our umask is 077), in the 0700 data dir
    os.chmod(args.socket, 0o600)
    grpc.listen(64)
    listeners = [(grpc, args.port)]
    if ui_listener is not None:
        listeners.append((ui_listener, args.ui_port))
    for listener, port in listeners:
        threading.Thread(target=_accept_forever, args=(listener, port), daemon=True).start()
    try:
        return child.wait()
    finally:
        for listener, _ in listeners:
            listener.close()
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
    code = serve(args, ui_listener, child)
    if code < 0:  # killed by a signal: end the same way, so the supervisor can tell
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""An "external cluster" for the scale-out tests: a Temporal server the test starts on
its own ports (not the embedded one, not the session's), reached through a real TLS
front that demands a client certificate, as a production cluster's would."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.client import Client

from tests.conftest import eventually, temporal_binary
from workflows.search_attributes import SEARCH_ATTRIBUTE_TYPES

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_pki(directory: Path) -> Pki:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("chaos test CA"))
        .issuer_name(_name("chaos test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common: str, usage: x509.ObjectIdentifier, server: bool) -> tuple[bytes, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("cluster.test")]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key

    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        *(directory / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key"))
    )
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert, key = leaf("cluster.test", ExtendedKeyUsageOID.SERVER_AUTH, server=True)
    pki.server_cert.write_bytes(cert)
    _write_key(pki.server_key, key)
    cert, key = leaf("loyalty-desk worker", ExtendedKeyUsageOID.CLIENT_AUTH, server=False)
    pki.client_cert.write_bytes(cert)
    _write_key(pki.client_key, key)
    return pki


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _quietly(relay: asyncio.Future[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await relay


@contextlib.asynccontextmanager
async def tls_front(pki: Pki, backend_port: int) -> AsyncIterator[int]:
    """A TLS terminator on a free port that only lets in clients the CA signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, backend_port)
        except OSError:
            writer.close()
            return
        relay = asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        task = asyncio.ensure_future(_quietly(relay))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    port = free_port()
    server = await asyncio.start_server(handle, HOST, port, ssl=context)
    try:
        yield port
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()


@contextlib.asynccontextmanager
async def external_cluster(namespace: str) -> AsyncIterator[str]:
    """`temporal server start-dev` on its own ports with the app's search attributes
    and `namespace`, in memory; yields its plain gRPC address."""
    port = free_port()
    args = [
        temporal_binary(),
        "server",
        "start-dev",
        "--disable-config-file",
        "--disable-config-env",
        "--ip",
        HOST,
        "--port",
        str(port),
        "--headless",
        "--namespace",
        namespace,
        "--log-level",
        "error",
    ]
    for name, kind in SEARCH_ATTRIBUTE_TYPES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    process = await asyncio.create_subprocess_exec(
        *args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"{HOST}:{port}"

    async def healthy() -> bool:
        assert process.returncode is None, "the external cluster died while starting"
        try:
            client = await Client.connect(address, namespace=namespace)
            return await client.service_client.check_health()
        except RuntimeError:
            return False

    try:
        await eventually(healthy, timeout=60, interval=0.3)
        yield address
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

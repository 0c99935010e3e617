"""A local S3-compatible server over real HTTP (moto in server mode) and a proxy that cuts uploads, for the
object storage tests.

Why a real server: s3fs, aiobotocore and aiohttp then run as they do against AWS (signing, retries, timeouts,
connection reuse, ``Expect: 100-continue``); only the buckets live in memory.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO

import boto3
import pytest
from moto.server import ThreadedMotoServer

ACCESS_KEY = "AKIAATTRIBUTIONTEST1"
SECRET_KEY = "s3cr3t-Attribution-Storage-Key-0123456789"
"""Fake credentials; the tests look for the secret in every output, log and file."""
REGION = "us-east-1"
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
)  # fmt: skip


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 on a free port of 127.0.0.1; its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def use_endpoint(monkeypatch: pytest.MonkeyPatch, endpoint: str | None, credentials: bool = True) -> None:
    """The environment s3fs and botocore read: fake credentials (unless told not to), the region and the
    endpoint; no shared config or credentials file of the machine."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    if credentials:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)


def s3_client(endpoint: str):
    """A boto3 client for setting up and reading back buckets (``s3fs.mkdir`` sends a location constraint
    that moto refuses in us-east-1)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def objects(client, bucket: str) -> dict[str, bytes]:
    """Every object of ``bucket``: key -> bytes."""
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


class CuttingProxy(socketserver.ThreadingTCPServer):
    """A TCP proxy in front of the S3 server that forwards every request, except that a ``PUT`` to
    ``cut_path`` gets its head and half of its body through, then both connections are closed.

    Why at the TCP level: the server sees exactly what a dropped network gives it, a body shorter than its
    Content-Length, and the client gets no response, as when a connection dies mid-upload.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: str, cut_path: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream, self.cut_path, self.cuts = (host, int(port)), cut_path, 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[CuttingProxy]:
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.shutdown()
            self.server_close()


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: CuttingProxy

    def handle(self) -> None:
        upstream = socket.create_connection(self.server.upstream)
        threading.Thread(target=_relay, args=(upstream, self.request), daemon=True).start()
        client = self.request.makefile("rb")
        try:
            while head := _read_head(client):
                request_line, length = _request_line_and_length(head)
                upstream.sendall(head)  # first the head: the client may wait for "100 Continue"
                cut = request_line.startswith(f"PUT {self.server.cut_path} ")
                upstream.sendall(client.read(length // 2 if cut else length))
                if cut:
                    self.server.cuts += 1
                    return
        finally:
            for sock in (upstream, self.request):
                _close(sock)


def _read_head(stream: BinaryIO) -> bytes:
    lines = []
    while (line := stream.readline()) not in (b"\r\n", b""):
        lines.append(line)
    return b"".join([*lines, b"\r\n"]) if lines else b""


def _request_line_and_length(head: bytes) -> tuple[str, int]:
    request_line, *fields = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
    assert "chunked" not in headers.get("transfer-encoding", ""), "the proxy reads bodies by Content-Length"
    return request_line, int(headers.get("content-length", 0))


def _relay(source: socket.socket, target: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    _close(target)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()

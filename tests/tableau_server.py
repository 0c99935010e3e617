"""A fake of the Tableau REST endpoints that tableauserverclient calls to publish a data source, over real HTTP
on a free local port, in a thread of the test's process (a ``dag.test()`` run reaches it too).

What it answers, as Tableau's REST API does (XML in the ``http://tableau.com/api`` namespace): sign-in with a
personal access token (a credentials token, the site's id, the user's id; 401 for a wrong token name, secret or
site), server info (the REST API version the client then uses), sign-out, the site's projects in pages (never
more per page than ``page_size``, however many are asked), file upload sessions (initiate, then append chunks as
``multipart/mixed``) and the publish request (``multipart/mixed``: the request payload, and the file itself
unless it names an upload session). What it keeps: every request's method and path, and each publish: its
data source name, project id, mode and the exact bytes of the file.
"""

from __future__ import annotations

import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

TOKEN_NAME = "attribution-ci"
TOKEN_SECRET = "pat-secret-7Hq2xV9kLm"
SITE = "marketing"
API_VERSION = "3.24"
NAMESPACE = "http://tableau.com/api"
PROJECTS = (
    ("p-default", "Default", None),
    ("p-finance", "Finance", None),
    ("p-sandbox", "Sandbox", None),
    ("p-marketing", "Marketing", None),
    ("p-marketing-reports", "Reports", "p-marketing"),
    ("p-finance-reports", "Reports", "p-finance"),
    ("p-attribution", "Attribution", "p-marketing"),
)
"""(id, name, parent id): seven projects, three pages of two, the named one on the last page."""


@dataclass
class Publish:
    """One publish request as the fake received it."""

    datasource: str
    project_id: str
    query: dict[str, list[str]]
    content: bytes
    chunks: int
    datasource_id: str = ""


@dataclass
class FakeTableau:
    """The fake server; ``with FakeTableau() as tableau:`` serves at ``tableau.url`` for the block."""

    page_size: int = 2
    stall_seconds: float = 0.0
    """Wait this long before answering each request (a server that takes too long)."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    publishes: list[Publish] = field(default_factory=list)
    datasources: dict[tuple[str, str], str] = field(default_factory=dict)
    """(project id, name) -> data source id: what is published."""
    uploads: dict[str, list[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.auth_token = uuid.uuid4().hex
        self.site_id = f"site-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeTableau:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def wait(self) -> None:
        self._stop.wait(self.stall_seconds)


class _Server(ThreadingHTTPServer):
    """Its handler threads are joined when it closes (a stalled answer, woken at the block's end, writes nothing
    into the next test's output), and a client that gave up first (a test of the publisher's time limit) is
    not an error of the fake's."""

    daemon_threads = False

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _handler(fake: FakeTableau) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # quiet: the test reads ``fake.requests``
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            fake.requests.append((method, parts.path))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fake.wait()
            query = parse_qs(parts.query)
            words = parts.path.strip("/").split("/")  # api, version, ...
            if words[:1] != ["api"] or len(words) < 3:
                return self._send(404, "")
            rest = words[2:]
            if rest == ["auth", "signin"] and method == "POST":
                return self._sign_in(body)
            if rest == ["serverInfo"] and method == "GET":
                return self._server_info()
            if self.headers.get("X-Tableau-Auth") != fake.auth_token:
                return self._error(401, "401002", "Unauthorized Access", "Invalid authentication credentials")
            if rest == ["auth", "signout"]:
                return self._send(204, "")
            if rest[:2] != ["sites", fake.site_id]:
                return self._error(403, "403000", "Forbidden", "Not this session's site")
            return self._site(method, rest[2:], query, body)

        def _site(self, method: str, rest: list[str], query: dict[str, list[str]], body: bytes) -> None:
            if rest == ["projects"] and method == "GET":
                return self._projects(query)
            if rest == ["fileUploads"] and method == "POST":
                upload = uuid.uuid4().hex
                fake.uploads[upload] = []
                return self._send(200, f'<fileUpload uploadSessionId="{upload}" fileSize="0"/>')
            if rest[:1] == ["fileUploads"] and len(rest) == 2 and method == "PUT":
                return self._append(rest[1], body)
            if rest == ["datasources"] and method == "POST":
                return self._publish(query, body)
            return self._error(404, "404000", "Not Found", f"{method} {'/'.join(rest)}")

        def _sign_in(self, body: bytes) -> None:
            credentials = ET.fromstring(body).find("credentials")
            site = credentials.find("site").get("contentUrl") if credentials is not None else None
            if credentials is None or (
                credentials.get("personalAccessTokenName"),
                credentials.get("personalAccessTokenSecret"),
                site,
            ) != (TOKEN_NAME, TOKEN_SECRET, SITE):
                return self._error(401, "401001", "Signin Error", "Error signing in to Tableau Server")
            self._send(
                200,
                f'<credentials token="{fake.auth_token}"><site id="{fake.site_id}" contentUrl="{SITE}"/>'
                '<user id="u-publisher"/></credentials>',
            )

        def _server_info(self) -> None:
            self._send(
                200,
                '<serverInfo><productVersion build="20241.24.0312.0830">2024.1.0</productVersion>'
                f"<restApiVersion>{API_VERSION}</restApiVersion></serverInfo>",
            )

        def _projects(self, query: dict[str, list[str]]) -> None:
            size = min(int(query.get("pageSize", ["100"])[0]), fake.page_size)
            number = int(query.get("pageNumber", ["1"])[0])
            page = PROJECTS[(number - 1) * size : number * size]
            projects = "".join(
                f'<project id="{pid}" name="{name}"'
                + (f' parentProjectId="{parent}"' if parent else "")
                + "/>"
                for pid, name, parent in page
            )
            self._send(
                200,
                f'<pagination pageNumber="{number}" pageSize="{size}" totalAvailable="{len(PROJECTS)}"/>'
                f"<projects>{projects}</projects>",
            )

        def _append(self, upload: str, body: bytes) -> None:
            if upload not in fake.uploads:
                return self._error(404, "404000", "Not Found", "No such upload session")
            fake.uploads[upload].append(_parts(self.headers["Content-Type"], body)["tableau_file"])
            size = sum(map(len, fake.uploads[upload])) // (1 << 20)
            self._send(200, f'<fileUpload uploadSessionId="{upload}" fileSize="{size}"/>')

        def _publish(self, query: dict[str, list[str]], body: bytes) -> None:
            parts = _parts(self.headers["Content-Type"], body)
            datasource = ET.fromstring(parts["request_payload"]).find("datasource")
            name, project_id = datasource.get("name"), datasource.find("project").get("id")
            if upload := query.get("uploadSessionId", [""])[0]:
                chunks = fake.uploads.pop(upload, [])
                content = b"".join(chunks)
            else:
                chunks, content = [], parts["tableau_datasource"]
            published = Publish(name, project_id, query, content, len(chunks))
            fake.publishes.append(published)
            key = (project_id, name)
            if key in fake.datasources and query.get("overwrite") != ["true"]:
                return self._error(409, "409004", "Resource Conflict", "A data source of that name exists")
            published.datasource_id = fake.datasources.setdefault(key, f"ds-{uuid.uuid4().hex[:8]}")
            self._send(
                201,
                f'<datasource id="{published.datasource_id}" name="{name}" type="hyper">'
                f'<project id="{project_id}"/></datasource>',
            )

        def _error(self, status: int, code: str, summary: str, detail: str) -> None:
            self._send(
                status, f'<error code="{code}"><summary>{summary}</summary><detail>{detail}</detail></error>'
            )

        def _send(self, status: int, inner: str) -> None:
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><tsResponse xmlns="{NAMESPACE}">{inner}</tsResponse>'.encode()
                if inner
                else b""
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/xml;charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _parts(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a ``multipart/mixed`` body by their name, each byte for byte."""
    kind, _, params = content_type.partition(";")
    assert kind.strip() == "multipart/mixed", content_type
    boundary = params.split("boundary=")[1].strip().strip('"').encode()
    found = {}
    for chunk in body.split(b"--" + boundary)[1:-1]:
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = next(
            line for line in head.decode().split("\r\n") if line.lower().startswith("content-disposition")
        )
        name = disposition.split('name="')[1].split('"')[0]
        found[name] = content.removesuffix(b"\r\n")
    return found

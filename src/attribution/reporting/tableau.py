"""Publishing the Hyper extract to Tableau Server or Tableau Cloud as a data source, replacing the data source
of the same name in the project (overwrite mode), or creating it.

Why tableauserverclient: it is Tableau's own client of the REST API. It signs in with a personal access token,
takes the highest API version the server offers, and sends a file of 64 MB or more in chunks (an upload
session, one request per chunk, then the publish request), a smaller one in the publish request itself. It is
imported only here, when publishing: it belongs to the ``tableau`` extra.

Why the secret cannot leak from here: it goes only into the sign-in request's body; the client's own log
lines name URLs and ids, never request bodies; every message raised here is one line written by this module,
with the secret blanked should a server quote it back.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attribution.errors import (
    ConfigError,
    InputError,
    TableauError,
    TableauRefusedError,
    TableauSignInError,
    TableauUnreachableError,
)
from attribution.objectstore import display, download, is_remote, split_location
from attribution.redaction import hide_credentials, one_line, scrub
from attribution.reporting.file_set import FILE_NAMES

logger = logging.getLogger(__name__)

EXTRACT_NAME = FILE_NAMES["hyper"]
DEFAULT_TIMEOUT = 300.0
"""Seconds Tableau may take to answer one request. Generous: the publish request is answered only once the
server has taken the whole extract in."""
MAX_TIMEOUT = 3600.0
CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection: a server that is down or unreachable is known in that time."""
PROJECT_PAGE_SIZE = 1000
"""Projects per page when looking one up: the REST API's largest page."""
SHOWN_PROJECTS = 5
"""Projects a "no such project" message names."""


@dataclass(frozen=True)
class TableauTarget:
    """Where the extract goes: the server, the site (its content URL; empty for the default site), the project
    (a name, or a path ``Parent/Child`` where names repeat), the data source's name (default: the extract's) and
    the personal access token that signs in."""

    url: str
    site: str
    project: str
    datasource: str | None
    token_name: str
    token_secret: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.url.startswith(("https://", "http://")):
            scheme = self.url.partition(":")[0]  # the rest may hold credentials: not echoed
            raise ConfigError(f"Bad tableau_url: it must start with https:// (or http://), not {scheme!r}")

    def __repr__(self) -> str:
        return f"TableauTarget({self.where}, project={self.project!r}, token_name={self.token_name!r})"

    @property
    def where(self) -> str:
        """The server and site as a message names them, without credentials."""
        site = f"site {self.site!r}" if self.site else "the default site"
        return f"Tableau at {hide_credentials(self.url)} ({site})"


@dataclass(frozen=True)
class Published:
    """The data source the extract became."""

    datasource_id: str
    datasource: str
    project_id: str
    project: str
    server: str
    site: str
    bytes: int


def extract_location(out: str | os.PathLike[str]) -> str:
    """Where a run with output ``out`` (a directory or an object store URL) writes the Hyper extract."""
    text = os.fspath(out)
    if is_remote(text):
        return f"{text.rstrip('/')}/{EXTRACT_NAME}"
    return str(Path(split_location(text)[1]) / EXTRACT_NAME)


def publish_extract(
    location: str | os.PathLike[str], target: TableauTarget, storage_options: Mapping[str, Any] | None = None
) -> Published:
    """Publish the Hyper extract at ``location`` (a path, a ``file://`` URI or an object store URL) to
    ``target`` in overwrite mode: the project's data source of that name is replaced, or created.

    Raises:
        InputError: no extract at ``location``.
        TableauSignInError, TableauRefusedError, TableauUnreachableError: one line naming the server.
    """
    tsc = _client_library()
    server = _server(tsc, target)
    with _local_copy(os.fspath(location), storage_options or {}) as path, _answers(target):
        server.auth.sign_in(tsc.PersonalAccessTokenAuth(target.token_name, target.token_secret, target.site))
        try:
            project, project_path = _project(tsc, server, target)
            item = tsc.DatasourceItem(project.id, name=target.datasource or path.stem)
            made = server.datasources.publish(item, str(path), tsc.Server.PublishMode.Overwrite)
        finally:
            _sign_out(server)
        published = Published(
            made.id,
            made.name,
            project.id,
            project_path,
            hide_credentials(target.url),
            target.site,
            path.stat().st_size,
        )
    logger.info(
        "Published %s to %s, project %r, as data source %r (%s)",
        path.name,
        target.where,
        project_path,
        made.name,
        made.id,
    )
    return published


def _client_library() -> Any:
    try:
        import tableauserverclient
    except ImportError:
        raise ConfigError(
            "Publishing to Tableau needs the tableauserverclient package, which is not installed: "
            "pip install 'attribution-pipeline[tableau]'"
        ) from None
    return tableauserverclient


def _server(tsc: Any, target: TableauTarget) -> Any:
    """The client of ``target``'s server, asking nothing yet; a ``ConfigError`` for a URL it cannot use."""
    try:
        return tsc.Server(
            target.url, use_server_version=True, http_options={"timeout": (CONNECT_TIMEOUT, target.timeout)}
        )
    except ValueError:  # its message may quote the URL, credentials and all
        raise ConfigError(
            f"Bad tableau_url {hide_credentials(target.url)!r}: not a URL of a server (no host, a space, a bad port)"
        ) from None


@contextmanager
def _local_copy(location: str, options: Mapping[str, Any]) -> Iterator[Path]:
    """The extract as a local file: itself, or a temporary copy of an object store's (its name kept, so the
    default data source name is the same)."""
    missing = InputError(
        f"No Hyper extract at {display(location)}: write it first (attribution report --format hyper, or a run "
        "with --format hyper)"
    )
    if not is_remote(location):
        path = Path(split_location(location)[1])
        if not path.is_file():
            raise missing
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="attribution-tableau-") as folder:
        try:
            path = download(location, Path(folder) / location.rstrip("/").rpartition("/")[2], options)
        except FileNotFoundError:
            raise missing from None
        yield path


def _project(tsc: Any, server: Any, target: TableauTarget) -> tuple[Any, str]:
    """The project ``target.project`` names, by its path (``Parent/Child``) or else by its name alone, and its
    path; a ``TableauRefusedError`` when none or several match."""
    projects = list(tsc.Pager(server.projects, tsc.RequestOptions(pagesize=PROJECT_PAGE_SIZE)))
    paths = _project_paths(projects)
    found = [p for p in projects if paths[p.id] == target.project] or [
        p for p in projects if p.name == target.project
    ]
    if len(found) == 1:
        return found[0], paths[found[0].id]
    if found:
        named = ", ".join(sorted(repr(paths[p.id]) for p in found))
        raise TableauRefusedError(
            f"{target.where} has {len(found)} projects named {target.project!r} ({named}): give its path"
        )
    shown = sorted(paths.values())[:SHOWN_PROJECTS]
    there = f"; its projects include {', '.join(map(repr, shown))}" if shown else "; it has none"
    raise TableauRefusedError(
        f"{target.where} has no project named {target.project!r}{there}: create it, or name another"
    )


def _project_paths(projects: Sequence[Any]) -> dict[str, str]:
    """Each project's path of names from the top (``Parent/Child``), by id."""
    by_id = {project.id: project for project in projects}

    def path(project: Any) -> str:
        names = [project.name]
        parent = by_id.get(project.parent_id)
        while parent is not None and len(names) <= len(by_id):  # a loop in the answer ends too
            names.append(parent.name)
            parent = by_id.get(parent.parent_id)
        return "/".join(reversed(names))

    return {project.id: path(project) for project in projects}


def _sign_out(server: Any) -> None:
    """End the session; a sign-out that fails is only logged (the session expires by itself), so it cannot hide
    what went wrong before it."""
    import requests
    from tableauserverclient.server.endpoint.exceptions import TableauError as ClientError

    try:
        server.auth.sign_out()
    except (requests.RequestException, ClientError) as exc:
        logger.debug("Signing out of Tableau failed: %s", type(exc).__name__)


@contextmanager
def _answers(target: TableauTarget) -> Iterator[None]:
    """Tableau's and the HTTP library's errors as the project's, in one line without the token's secret."""
    import requests
    from tableauserverclient.server.endpoint.exceptions import TableauError as ClientError

    try:
        yield
    except TableauError:
        raise
    except (ClientError, requests.RequestException) as exc:
        raise (
            _refusal(exc, target)
            or _network_failure(exc, target)
            or _failure(TableauRefusedError, f"{target.where}: {type(exc).__name__}: {exc}", target)
        ) from None


def _refusal(exc: Exception, target: TableauTarget) -> TableauError | None:
    """What Tableau's client error ``exc`` means for the user, if it is one the project explains."""
    from tableauserverclient.server.endpoint.exceptions import (
        FailedSignInError,
        InternalServerError,
        NonXMLResponseError,
        ServerResponseError,
    )

    where = target.where
    if isinstance(exc, FailedSignInError):
        return _failure(
            TableauSignInError,
            f"{where} refused the personal access token {target.token_name!r}: {_said(exc)}; check the token's "
            "name and secret, that it has not expired, and the site",
            target,
        )
    if isinstance(exc, ServerResponseError):
        return _failure(TableauRefusedError, f"{where} refused the request: {_said(exc)}", target)
    if isinstance(exc, InternalServerError):
        return _failure(
            TableauUnreachableError,
            f"{where} answered HTTP {exc.code}, a server error: try again later",
            target,
        )
    if isinstance(exc, NonXMLResponseError):
        return _failure(
            TableauRefusedError,
            f"{where} did not answer as Tableau's REST API does (no XML): is the URL the server's?",
            target,
        )
    return None


def _network_failure(exc: Exception, target: TableauTarget) -> TableauError | None:
    """What the HTTP library's error ``exc`` means for the user, if it is a timeout or a failed connection."""
    import requests

    if isinstance(exc, requests.Timeout):
        return _failure(
            TableauUnreachableError,
            f"{target.where} did not answer within {CONNECT_TIMEOUT:g} s to connect or {target.timeout:g} s to "
            "reply (tableau_timeout)",
            target,
        )
    if isinstance(exc, requests.ConnectionError):
        return _failure(TableauUnreachableError, f"{target.where} cannot be reached: {_cause(exc)}", target)
    return None


def _said(exc: Any) -> str:
    """What Tableau's error answer says: its code and summary, then its detail."""
    head = " ".join(str(part) for part in (exc.code, exc.summary) if part) or "no reason given"
    return f"{head}: {exc.detail}" if exc.detail else head


def _cause(exc: BaseException) -> str:
    """A connection failure in words: the OS error underneath, where there is one."""
    text = str(exc)
    for words, cause in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "no such host"),
        ("nodename nor servname", "no such host"),
        ("Connection aborted", "the connection closed without an answer"),
        ("RemoteDisconnected", "the connection closed without an answer"),
        ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted"),
    ):
        if words in text:
            return cause
    return type(exc).__name__


def _failure(kind: type[TableauError], text: str, target: TableauTarget) -> TableauError:
    return kind(scrub(one_line(text), [target.token_secret]))

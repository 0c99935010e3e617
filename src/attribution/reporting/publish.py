"""Publishing the report files: into a local directory, or into an object store by URL.

Why render first, then publish: every file is made by the export writers before anything is placed, so a
writer's failure places nothing. A local directory gets the run's files as one set with its database commit
(``file_set``); an object store gets each file as one whole object, before the commit (``publishing``).
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attribution.objectstore import is_remote, open_store, split_location, upload
from attribution.reporting.file_set import Committed, Render, check_folder, locked, release, render_draft


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only when the block succeeds.

    Why: readers (a BI refresh, a browser) never see half a file, and a failed write leaves the old one.
    The file gets the mode the umask gives any new file (``0o666`` less the umask), not a temporary file's
    private one nor a fixed one: the user's umask says who may read the reports.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    mode = stat.S_IMODE(os.fstat(handle).st_mode)
    os.close(handle)
    try:
        yield tmp
        os.chmod(tmp, mode)  # again: a writer may have made the file anew (Hyper does)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass(frozen=True)
class Pending:
    """Report files made for a run: where they will be, and ``release``, which puts them there once the
    run's transaction has committed."""

    paths: dict[str, Path | str]
    release: Callable[[], None]


Publish = Callable[[Render, str | None], Pending]
"""Makes the files ``render`` writes ready at the destination, awaiting the commit of the run named
(``None``: made from committed tables)."""


def check_destination(out: str | os.PathLike[str], names: Iterable[str]) -> None:
    """Refuse, before any work, a local ``out`` the files cannot go to (an object store answers only when
    written to)."""
    if not is_remote(out):
        check_folder(_folder(out), names)


@contextmanager
def publishing(
    out: str | os.PathLike[str], committed: Committed, options: Mapping[str, Any] | None = None
) -> Iterator[Publish]:
    """The destination ``out``, ready for one run's files.

    A local folder is locked for the block, what a killed publisher left there is finished first, and
    ``publish`` stages the files for ``Pending.release`` (``file_set``). An object store gets each file as one
    whole object at once (s3fs sends files under 100 MB in a single ``PutObject``): an upload cut half-way
    leaves the previous object, but the objects are put before the run's commit, one by one, so a failed
    commit or a kill between two uploads leaves new objects beside old ones or old tables.

    Raises:
        StorageError: one line naming the destination (never credentials) and the cause.
    """
    text = os.fspath(out)
    if is_remote(text):
        yield lambda render, _awaits: _upload(text, render, options or {})
        return
    folder = _folder(text)
    check_folder(folder, ())
    with locked(folder, committed):

        def publish(render: Render, awaits_commit: str | None) -> Pending:
            drafted = render_draft(folder, render, awaits_commit)
            return Pending(dict(drafted.paths), lambda: release(drafted))

        yield publish


def _folder(out: str | os.PathLike[str]) -> Path:
    return Path(split_location(out)[1])


def _upload(url: str, render: Render, options: Mapping[str, Any]) -> Pending:
    fs, root = open_store(url, options)
    with tempfile.TemporaryDirectory(prefix="attribution-reports-") as folder:
        files = render(Path(folder))
        urls = {name: upload(fs, path, root, url, options) for name, path in files.items()}
    return Pending(dict(urls), lambda: None)

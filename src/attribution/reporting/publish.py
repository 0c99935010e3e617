"""Publishing the report files: into a local directory, or into an object store by URL.

Why render first, then publish: every file is made by the export writers before anything is sent, so a
writer's failure sends nothing. A local directory then gets each file by rename (the writers' own atomic
temp file); an object store gets each file as one whole object in one PUT (s3fs sends files under 100 MB
in a single ``PutObject``), so a failed upload leaves no partial object and the previous object at that key
stays as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fsspec.core import split_protocol

from attribution.objectstore import is_remote, open_store, upload

Render = Callable[[Path], dict[str, Path]]
"""Writes the report files into a folder and returns each format's file."""
FILE_MODE = 0o644
"""Report files are for sharing: readable by everyone, unlike the private default of a temporary file."""


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only when the block succeeds.

    Why: readers (a BI refresh, a browser) never see half a file, and a failed write leaves the old one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def publish(
    out: str | os.PathLike[str], render: Render, options: Mapping[str, Any] | None = None
) -> dict[str, Path | str]:
    """Render the report files and put them at ``out``.

    Args:
        out: a local directory (or ``file://`` URL) or an fsspec URL such as ``s3://bucket/prefix``.
        render: writes the files into the folder it is given; called once.
        options: fsspec storage options for a URL (credentials, ``endpoint_url``, ``config_kwargs``).

    Returns:
        Each format's file: a ``Path`` in a local directory, the object's URL in a store.

    Raises:
        StorageError: one line naming the URL and the cause; the objects already at ``out`` are untouched
            by the upload that failed.
    """
    text = os.fspath(out)
    if not is_remote(text):
        return render(Path(split_protocol(text)[1]))
    fs, root = open_store(text, options or {})
    with tempfile.TemporaryDirectory(prefix="attribution-reports-") as folder:
        files = render(Path(folder))
        return {name: upload(fs, path, root, text, options or {}) for name, path in files.items()}

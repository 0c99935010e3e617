"""The project's IHC server on a free port with a one-off key, for one run (``attribution run --local-ihc``)."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def local_ihc_server(on_failure: Callable[[Path], None]) -> Iterator[tuple[str, str]]:
    """The server's URL and key while it runs.

    Its log goes to a new private directory, not a fixed path in the shared temporary folder (where another
    user could plant a link to a file of ours); it is kept and handed to ``on_failure`` when the run fails,
    removed otherwise.
    """
    from attribution.ihc_api.local import LocalServer

    key = secrets.token_urlsafe(24)
    folder = Path(tempfile.mkdtemp(prefix="attribution-local-ihc-"))
    log = folder / "server.log"
    try:
        with LocalServer.launch(log, api_key=key) as server:
            yield server.url, key
    except BaseException:
        on_failure(log)
        raise
    shutil.rmtree(folder, ignore_errors=True)

"""A run's report files, published into a local folder as one set: all of them with the run's database
commit, or none.

Why: the files are made inside the run's transaction but may only appear once it commits, and a kill may
come at any moment. So a publisher, holding an exclusive ``flock`` on the folder (two publishers never
interleave):

1. finishes what a killed publisher left (``recover``);
2. renders every file into a draft folder inside it (``.attribution-staging-*``), then writes the
   journal there (``.attribution-publish.json``: the run whose commit the files await, their names);
3. lets the caller commit the database, the run's record in the same transaction;
4. renames each file into place and removes the draft folder (``release``).

``recover`` removes a draft folder without a journal (rendering was cut) or whose run did not commit, and
finishes the renames of one whose run did. Renames within one folder are atomic, so a reader sees each file
whole; between two renames it may see one file of the new set beside one of the old for an instant.

Why so wary: whatever is in the folder may have been planted. A journal may name only the plain names of
the report files (``FILE_NAMES``), never a path; a draft folder is used only if it is a private folder of
this user (not a link); a link is never followed, to a journal or to a report file; a folder writable by
others is refused. A draft folder whose journal cannot be trusted is set aside, saying so in one line.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from attribution.errors import StorageError, StorageRefusedError, StorageUnavailableError

FILE_NAMES = {
    "csv": "channel_reporting.csv",
    "parquet": "channel_reporting.parquet",
    "hyper": "channel_reporting.hyper",
    "html": "dashboard.html",
}
"""The file each export format writes in the output directory: the only names a set may hold."""
DRAFT_PREFIX = ".attribution-staging-"
"""The draft folders' prefix, as older versions named it, so ``recover`` still finds what they left."""
SET_ASIDE_PREFIX = ".attribution-set-aside-"
JOURNAL = ".attribution-publish.json"
JOURNAL_MAX_BYTES = 64 * 1024
LOCK_WAIT_SECONDS = 30.0
"""How long a publisher waits for another one's lock on the folder before it gives up."""
LOCK_POLL_SECONDS = 0.1
logger = logging.getLogger(__name__)

Committed = Callable[[str], bool]
"""Whether the run of that id committed its tables."""
Render = Callable[[Path], dict[str, Path]]
"""Writes the report files into a folder and returns each format's file."""


@dataclass(frozen=True)
class DraftSet:
    """Files rendered and journalled in ``draft``, waiting to be renamed into ``folder``."""

    folder: Path
    draft: Path
    files: dict[str, str]
    """Each format's file name."""

    @property
    def paths(self) -> dict[str, Path]:
        """Where each format's file will be once released."""
        return {name: self.folder / file_name for name, file_name in self.files.items()}


def check_folder(folder: Path, names: Iterable[str]) -> None:
    """Refuse, in one line naming the path and the cause, a folder the files cannot go to: a file, below a
    file, not writable, or holding a directory where a file must go; before any work is done."""
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if not existing.is_dir():
        raise _refused(folder, f"{existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _refused(folder, f"{existing} is not writable")
    if existing == folder:
        _check_private(folder, existing.stat())
    for name in names:
        _check_destination(folder, name)


def _check_private(folder: Path, status: os.stat_result) -> None:
    """Refuse a folder others may write into: they could plant a journal or a link there."""
    if status.st_mode & stat.S_IWOTH:
        raise _refused(folder, f"{folder} is writable by others")


def _check_destination(folder: Path, name: str) -> None:
    """Refuse a place a report file cannot be renamed to: a directory, or a link (never followed)."""
    if (folder / name).is_symlink():
        raise _refused(folder, f"{folder / name} is a symbolic link")
    if (folder / name).is_dir():
        raise _refused(folder, f"{folder / name} is a directory")


@contextmanager
def locked(folder: Path, committed: Committed) -> Iterator[None]:
    """Hold the folder's exclusive lock, with what a killed publisher left finished first.

    On an error in the block, a set still drafted is settled at once by its run's commit (the database may
    be what failed: then the next publisher settles it).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise _os_error(folder, exc) from None
    try:
        _check_private(folder, os.fstat(handle))
        _lock(handle, folder, LOCK_WAIT_SECONDS)
        recover(folder, committed)
        try:
            yield
        except BaseException:
            with suppress(Exception):
                recover(folder, committed)
            raise
    finally:
        os.close(handle)  # releases the lock


def _lock(handle: int, folder: Path, wait: float) -> None:
    """Take the folder's exclusive lock, waiting at most ``wait`` seconds: a publisher that never lets go
    (another user's, a stopped process) must not stall every run for ever."""
    deadline = time.monotonic() + wait
    if _try_lock(handle):
        return
    logger.warning("Waiting up to %g s for another publisher's lock on %s", wait, folder)
    while not _try_lock(handle):
        if time.monotonic() >= deadline:
            raise StorageUnavailableError(
                f"Cannot write the report files to {folder}: another publisher held its lock for {wait:g} s"
            )
        time.sleep(LOCK_POLL_SECONDS)


def _try_lock(handle: int) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def render_draft(folder: Path, render: Render, awaits_commit: str | None) -> DraftSet:
    """Render the files into a new draft folder and journal them; ``awaits_commit``: the run whose commit
    they wait for (``None``: they are made from committed tables)."""
    try:
        draft = Path(tempfile.mkdtemp(prefix=DRAFT_PREFIX, dir=folder))
    except OSError as exc:
        raise _os_error(folder, exc) from None
    try:
        files = {name: path.name for name, path in render(draft).items()}
        check_folder(folder, files.values())  # again, under the lock: a rename after the commit must not fail
        _write_journal(draft, {"awaits_commit": awaits_commit, "files": sorted(files.values())})
    except OSError as exc:  # a full disk, a file size limit: the previous files stay
        shutil.rmtree(draft, ignore_errors=True)
        raise _os_error(folder, exc, named=False) from None
    except BaseException:
        shutil.rmtree(draft, ignore_errors=True)
        raise
    return DraftSet(folder, draft, files)


def release(drafted: DraftSet) -> None:
    """Rename the drafted files into place and remove the draft folder."""
    _finish(drafted.folder, drafted.draft, drafted.files.values())


def recover(folder: Path, committed: Committed) -> None:
    """Finish or remove every draft folder a killed publisher left in ``folder`` (see the module); leave
    alone one that is not this user's private folder, and set aside one whose journal cannot be trusted,
    each with one line saying so."""
    for draft in sorted(folder.glob(f"{DRAFT_PREFIX}*")):
        try:
            _check_own(draft)
        except _Untrusted as exc:
            logger.warning("Left %s alone: %s", draft, exc)
            continue
        try:
            journal = _read_journal(draft)
        except _Untrusted as exc:
            _set_aside(folder, draft, str(exc))
            continue
        awaited = journal and journal["awaits_commit"]
        if journal is not None and (awaited is None or committed(awaited)):
            _finish(folder, draft, journal["files"])
        else:
            shutil.rmtree(draft)


class _Untrusted(Exception):
    """What a publisher did not make: the reason, in a few words."""


def _check_own(draft: Path) -> None:
    status = draft.lstat()
    if stat.S_ISLNK(status.st_mode):
        raise _Untrusted("it is a symbolic link")
    if not stat.S_ISDIR(status.st_mode):
        raise _Untrusted("it is not a directory")
    if status.st_uid != os.geteuid():
        raise _Untrusted("it belongs to another user")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _Untrusted("it is writable by others")


def _set_aside(folder: Path, draft: Path, cause: str) -> None:
    aside = folder / (SET_ASIDE_PREFIX + draft.name.removeprefix(DRAFT_PREFIX))
    try:
        os.replace(draft, aside)
    except OSError as exc:
        raise _os_error(folder, exc) from None
    logger.warning("Set aside %s as %s: its journal %s", draft, aside.name, cause)


def _finish(folder: Path, draft: Path, names: Iterable[str]) -> None:
    try:
        for name in names:
            _move(draft, folder, name)
        _sync(folder)
    except OSError as exc:
        raise _os_error(folder, exc) from None
    shutil.rmtree(draft)


def _move(draft: Path, folder: Path, name: str) -> None:
    """Rename a drafted file into place, unless a killed publisher did already; a link is never moved or
    replaced."""
    try:
        status = (draft / name).lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(status.st_mode):
        raise _refused(folder, f"{draft / name} is not a plain file")
    _check_destination(folder, name)
    os.replace(draft / name, folder / name)


def _write_journal(draft: Path, journal: dict) -> None:
    for path in draft.iterdir():
        _sync(path)
    written = draft / f"{JOURNAL}.new"
    written.write_text(json.dumps(journal))
    _sync(written)
    os.replace(written, draft / JOURNAL)  # the journal exists whole or not at all
    _sync(draft)


def _read_journal(draft: Path) -> dict | None:
    """The journal, ``None`` if there is none (rendering was cut); ``_Untrusted`` if it is not one this
    module wrote: not JSON of its shape, or naming anything but report files."""
    try:
        handle = os.open(draft / JOURNAL, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Untrusted("is a symbolic link" if exc.errno == errno.ELOOP else "cannot be read") from None
    with os.fdopen(handle, "rb") as file:
        text = file.read(JOURNAL_MAX_BYTES + 1)
    try:
        journal = json.loads(text) if len(text) <= JOURNAL_MAX_BYTES else None
    except ValueError:
        journal = None
    if not _journal_shape(journal):
        raise _Untrusted("is not a journal of report files")
    for name in journal["files"]:
        if name not in FILE_NAMES.values():
            raise _Untrusted(f"names {name!r}, not a report file")
    return journal


def _journal_shape(journal: object) -> bool:
    return (
        isinstance(journal, dict)
        and isinstance(journal.get("awaits_commit", 0), str | None)
        and isinstance(journal.get("files"), list)
        and all(isinstance(name, str) for name in journal["files"])
    )


def _sync(path: Path) -> None:
    """Flush a file or a folder's entries to disk: the journal must not outlive the files it names."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _refused(folder: Path, cause: str) -> StorageRefusedError:
    return StorageRefusedError(f"Cannot write the report files to {folder}: {cause}")


def _os_error(folder: Path, exc: OSError, named: bool = True) -> StorageError:
    """The error in one line; ``named``: with the file the system named (not a temporary file's name)."""
    cause = exc.strerror or type(exc).__name__
    where = f"{exc.filename}: " if exc.filename and named else ""
    kind = StorageRefusedError if isinstance(exc, PermissionError) else StorageError
    return kind(f"Cannot write the report files to {folder}: {where}{cause}")

"""A run's report files, published into a local folder as one set: all of them with the run's database
commit, or none.

Why: the files are made inside the run's transaction but may only appear once it commits, and a kill may
come at any moment. So a publisher, holding an exclusive ``flock`` on the folder (two publishers never
interleave):

1. finishes what a killed publisher left (``recover``);
2. renders every file into a staging folder inside it (``.attribution-staging-*``), then writes the
   journal there (``.attribution-publish.json``: the run whose commit the files await, their names);
3. lets the caller commit the database, the run's record in the same transaction;
4. renames each file into place and removes the staging folder (``release``).

``recover`` removes a staging folder without a journal (rendering was cut) or whose run did not commit, and
finishes the renames of one whose run did. Renames within one folder are atomic, so a reader sees each file
whole; between two renames it may see one file of the new set beside one of the old for an instant.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from attribution.errors import StorageError, StorageRefusedError

STAGING_PREFIX = ".attribution-staging-"
JOURNAL = ".attribution-publish.json"

Committed = Callable[[str], bool]
"""Whether the run of that id committed its tables."""
Render = Callable[[Path], dict[str, Path]]
"""Writes the report files into a folder and returns each format's file."""


@dataclass(frozen=True)
class StagedSet:
    """Files rendered and journalled in ``staging``, waiting to be renamed into ``folder``."""

    folder: Path
    staging: Path
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
    for name in names:
        if (folder / name).is_dir():
            raise _refused(folder, f"{folder / name} is a directory")


@contextmanager
def locked(folder: Path, committed: Committed) -> Iterator[None]:
    """Hold the folder's exclusive lock, with what a killed publisher left finished first.

    On an error in the block, a set still staged is settled at once by its run's commit (the database may
    be what failed: then the next publisher settles it).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise _os_error(folder, exc) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        recover(folder, committed)
        try:
            yield
        except BaseException:
            with suppress(Exception):
                recover(folder, committed)
            raise
    finally:
        os.close(handle)  # releases the lock


def stage(folder: Path, render: Render, awaits_commit: str | None) -> StagedSet:
    """Render the files into a new staging folder and journal them; ``awaits_commit``: the run whose commit
    they wait for (``None``: they are made from committed tables)."""
    try:
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    except OSError as exc:
        raise _os_error(folder, exc) from None
    try:
        files = {name: path.name for name, path in render(staging).items()}
        check_folder(folder, files.values())  # again, under the lock: a rename after the commit must not fail
        _write_journal(staging, {"awaits_commit": awaits_commit, "files": sorted(files.values())})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return StagedSet(folder, staging, files)


def release(staged: StagedSet) -> None:
    """Rename the staged files into place and remove the staging folder."""
    _finish(staged.folder, staged.staging, staged.files.values())


def recover(folder: Path, committed: Committed) -> None:
    """Finish or remove every staging folder a killed publisher left in ``folder`` (see the module)."""
    for staging in sorted(folder.glob(f"{STAGING_PREFIX}*")):
        journal = _read_journal(staging)
        awaited = journal and journal["awaits_commit"]
        if journal is not None and (awaited is None or committed(awaited)):
            _finish(folder, staging, journal["files"])
        else:
            shutil.rmtree(staging)


def _finish(folder: Path, staging: Path, names: Iterable[str]) -> None:
    try:
        for name in names:
            if (staging / name).exists():  # a killed publisher may have moved it already
                os.replace(staging / name, folder / name)
        _sync(folder)
    except OSError as exc:
        raise _os_error(folder, exc) from None
    shutil.rmtree(staging)


def _write_journal(staging: Path, journal: dict) -> None:
    for path in staging.iterdir():
        _sync(path)
    written = staging / f"{JOURNAL}.new"
    written.write_text(json.dumps(journal))
    _sync(written)
    os.replace(written, staging / JOURNAL)  # the journal exists whole or not at all
    _sync(staging)


def _read_journal(staging: Path) -> dict | None:
    try:
        return json.loads((staging / JOURNAL).read_text())
    except FileNotFoundError:
        return None


def _sync(path: Path) -> None:
    """Flush a file or a folder's entries to disk: the journal must not outlive the files it names."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _refused(folder: Path, cause: str) -> StorageRefusedError:
    return StorageRefusedError(f"Cannot write the report files to {folder}: {cause}")


def _os_error(folder: Path, exc: OSError) -> StorageError:
    cause = exc.strerror or type(exc).__name__
    where = f"{exc.filename}: " if exc.filename else ""
    kind = StorageRefusedError if isinstance(exc, PermissionError) else StorageError
    return kind(f"Cannot write the report files to {folder}: {where}{cause}")

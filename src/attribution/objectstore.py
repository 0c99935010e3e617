"""Object stores by URL (``s3://bucket/prefix``, or any installed fsspec protocol such as ``memory://``):
opening one with bounded time, putting a file as one whole object, fetching one, and errors that never show
a secret.

Why shared: report files (``reporting.publish``) and Redshift's staged ``COPY`` (``warehouse.redshift_copy``)
both put files into a store, and publishing to Tableau (``reporting.tableau``) fetches the extract; credentials come from the caller's options or what the library reads itself
(``AWS_*`` environment variables for S3) and never appear in a location or an error message.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from attribution.errors import StorageError, StorageRefusedError, StorageUnavailableError
from attribution.redaction import hide_credentials, is_secret_name, scrub

logger = logging.getLogger(__name__)

LOCAL_PROTOCOLS = (None, "file", "local")
S3_PROTOCOLS = ("s3", "s3a")
S3_DEFAULTS: dict[str, Any] = {
    "config_kwargs": {"connect_timeout": 5, "retries": {"total_max_attempts": 3, "mode": "standard"}}
}
"""Bounded time when the endpoint is down: a 5 s connect timeout and 3 attempts per object. Storage options
override them (``{"config_kwargs": {"connect_timeout": 2}}``)."""


def split_location(out: str | os.PathLike[str]) -> tuple[str | None, str]:
    """``out``'s protocol (``None`` for a plain path) and its path, as fsspec splits them.

    Why fsspec only for text that can be a URL: fsspec splits nothing else, and importing it costs a run that
    writes to a local directory (most runs) about 20 ms of its start.
    """
    text = os.fspath(out)
    if "://" not in text and not text.startswith("data:"):
        return None, text
    from fsspec.core import split_protocol

    protocol, path = split_protocol(text)
    return protocol, path


def is_remote(out: str | os.PathLike[str]) -> bool:
    """Whether ``out`` names an object store rather than a local directory (``file://`` is local)."""
    return split_location(out)[0] not in LOCAL_PROTOCOLS


def display(out: str | os.PathLike[str]) -> str:
    """The destination as it may be shown: any ``user:password@`` or secret query value in a URL hidden."""
    text = os.fspath(out)
    if not is_remote(text):
        return text
    return hide_credentials(text)


def as_uri(location: Path | str) -> str:
    """A written file as a URI: ``file://`` for a local file, the object's URL as it is."""
    return location.resolve().as_uri() if isinstance(location, Path) else location


def open_store(url: str, options: Mapping[str, Any]) -> tuple[Any, str]:
    """The filesystem and root path of ``url``, with the S3 time bounds unless the options set their own.

    Why a fresh instance (``skip_instance_cache``): fsspec caches filesystems by their arguments, and a
    cached one would keep the credentials and endpoint it was made with.
    """
    from fsspec.core import url_to_fs

    protocol = split_location(url)[0]
    if protocol in S3_PROTOCOLS:
        config = {**S3_DEFAULTS["config_kwargs"], **options.get("config_kwargs", {})}
        options = {**S3_DEFAULTS, **options, "config_kwargs": config}
    try:
        fs, root = url_to_fs(url, skip_instance_cache=True, **options)
    except ImportError as exc:
        s3 = protocol in S3_PROTOCOLS
        hint = "install attribution-pipeline[s3]" if s3 else f"install the fsspec package for {protocol}://"
        raise StorageRefusedError(f"Cannot write to {display(url)}: {hint} ({exc})") from None
    except (TypeError, ValueError) as exc:
        raise StorageRefusedError(f"Bad storage options for {display(url)}: {_first_line(exc)}") from None
    if protocol in S3_PROTOCOLS:
        fs.retries = 1  # s3fs retries on top of botocore's attempts: one layer keeps the time bounded
    return fs, root.rstrip("/")


def upload(fs: Any, path: Path, root: str, url: str, options: Mapping[str, Any]) -> str:
    """Put one file as one whole object and return its URL."""
    location = f"{display(url).rstrip('/')}/{path.name}"
    try:
        fs.put_file(str(path), f"{root}/{path.name}")
    except Exception as exc:
        kind, cause = _classify(exc)
        detail = scrub(_first_line(exc), _secret_values(options))  # should a library quote one
        raise kind(f"Cannot upload {location}: {cause} ({detail})") from None
    logger.info("uploaded %s (%d bytes)", location, path.stat().st_size)
    return location


def download(url: str, path: Path, options: Mapping[str, Any]) -> Path:
    """Fetch the object at ``url`` into the local file ``path``; ``FileNotFoundError`` when there is none."""
    fs, key = open_store(url, options)
    try:
        fs.get_file(key, str(path))
    except FileNotFoundError:
        raise
    except Exception as exc:
        kind, _cause = _classify(exc)
        detail = scrub(_first_line(exc), _secret_values(options))
        raise kind(f"Cannot download {display(url)}: {detail}") from None
    return path


def _classify(exc: BaseException) -> tuple[type[StorageError], str]:
    """The error class and the cause in words, by exception type (s3fs turns S3 error codes into OS errors)."""
    for kinds, error, cause in _causes():
        if isinstance(exc, kinds):
            return error, cause
    return StorageError, "upload failed"


def _causes() -> Iterator[tuple[tuple[type[BaseException], ...], type[StorageError], str]]:
    try:  # botocore is there with s3fs; other protocols raise OS errors
        from botocore import exceptions as boto

        no_credentials, unreachable, interrupted = (
            (boto.NoCredentialsError, boto.PartialCredentialsError),
            (boto.ConnectionError,),  # EndpointConnectionError, ConnectTimeoutError
            (boto.HTTPClientError,),  # ConnectionClosedError, ReadTimeoutError
        )
    except ImportError:
        no_credentials, unreachable, interrupted = (), (), ()
    yield (FileNotFoundError,), StorageRefusedError, "no such bucket"
    yield (
        (PermissionError,),
        StorageRefusedError,
        "access denied: check the credentials and the bucket policy",
    )
    yield (
        no_credentials,
        StorageRefusedError,
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the storage connection",
    )
    yield (*unreachable, ConnectionRefusedError), StorageUnavailableError, "endpoint unreachable"
    interrupted_cause = "upload interrupted, the object keeps its previous version"
    yield (*interrupted, ConnectionError, TimeoutError), StorageUnavailableError, interrupted_cause


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _secret_values(options: Mapping[str, Any]) -> Iterator[str]:
    for name, value in options.items():
        if isinstance(value, Mapping):
            yield from _secret_values(value)
        elif isinstance(value, str) and value and is_secret_name(name):
            yield value

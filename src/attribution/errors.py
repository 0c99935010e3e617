"""The project's exception tree, so callers (CLI, retries, Airflow) decide by type, not by message.

    AttributionError                 root: every error the project raises on purpose
    ├── ConfigError                  a bad setting: date range, model name, URL, option value
    ├── InputError                   the data is not what the pipeline needs
    │   ├── DatabaseNotFoundError    the database file does not exist
    │   ├── SchemaError              a missing table or column
    │   ├── BadRowsError             input rows break a check (a duplicate key, a malformed timestamp)
    │   └── StaleInputError          a date's inputs look not yet landed (cost rows, sessions, conversions)
    ├── IntegrityError               a computed result broke an invariant (credit not summing to 1)
    ├── StorageError                 the report files could not be written to their destination
    │   ├── StorageRefusedError      no such bucket, access denied, no credentials, s3fs not installed,
    │   │                            an out folder that is a file or not writable
    │   └── StorageUnavailableError  the endpoint is unreachable or an upload was cut (worth a retry)
    ├── IHCApiError                  the IHC service could not attribute a run
    │   ├── AuthenticationError      the service refused the API key (the key is never shown)
    │   ├── ServiceRefusedError      every request is refused: unknown conv_type_id, unexpected 4xx,
    │   │                            a header the HTTP library cannot send
    │   ├── ServiceUnreachableError  connection failures in a row: the service is down (worth a retry)
    │   └── IncompleteAttributionError  some journeys got no credit: failed, skipped or unsent
    └── TableauError                 the Hyper extract could not be published to Tableau Server or Cloud
        ├── TableauSignInError       the server refused the personal access token (its secret is never shown)
        ├── TableauRefusedError      no such project, or the server refused the publish (a 4xx answer)
        └── TableauUnreachableError  connection refused, no answer in time, or a 5xx (worth a retry)

Transient errors (worth a retry) and terminal ones are told apart by the marker classes
``TransientError`` and ``TerminalError``, which the concrete classes mix in. ``Interrupted`` (SIGINT,
SIGTERM) is no error: like ``KeyboardInterrupt`` it passes every ``except Exception``.
"""

from __future__ import annotations

import signal


class AttributionError(Exception):
    """Root of every error the project raises on purpose; its message is one line for the user."""


class TransientError(AttributionError):
    """Marker: the same call may succeed later (timeouts, throttling, a busy database)."""


class TerminalError(AttributionError):
    """Marker: retrying cannot help until someone changes an input or a setting."""


class ConfigError(TerminalError):
    """A setting is invalid: bad date range, unknown model, malformed URL."""


class InputError(TerminalError):
    """The input data cannot be used as it is."""


class DatabaseNotFoundError(InputError):
    """The database file the user pointed at does not exist (``run`` never creates it)."""


class SchemaError(InputError):
    """A table or column the pipeline needs is missing."""


class BadRowsError(InputError):
    """Input rows break a check (``warehouse.input_checks``); the message names the table, the check, the
    count and the first ids."""


class StaleInputError(InputError):
    """The inputs of a run's dates look not yet landed (``warehouse.freshness``): run again later (the same
    command), or anyway with ``--on-stale warn``."""


class IntegrityError(TerminalError):
    """A computed result broke an invariant; nothing was written."""


class StorageError(AttributionError):
    """The report files could not be published; the message names the folder or URL (never credentials) and
    the cause."""


class StorageRefusedError(StorageError, TerminalError):
    """The destination refuses the files (no such bucket, access denied, an out folder that is a file or not
    writable) or cannot be reached at all (no s3fs, no credentials): retrying cannot help until a setting
    changes."""


class StorageUnavailableError(StorageError, TransientError):
    """The endpoint did not answer or an upload was cut; the object at that key keeps its previous version."""


class IHCApiError(AttributionError):
    """The IHC attribution service could not attribute a run (see ``attribution.ihc_api``); the subclasses
    say whether retrying may help."""


class AuthenticationError(IHCApiError, TerminalError):
    """The IHC service refused the API key; the run stops at once and the key is never shown."""


class ServiceRefusedError(IHCApiError, TerminalError):
    """Every request is refused for a reason retrying cannot fix: an unknown ``conv_type_id``, a header
    the HTTP library will not send, or an answer past the client's size cap."""


class ServiceUnreachableError(IHCApiError, TransientError):
    """The IHC service stopped answering connections; the credit of the answered journeys is stored and a
    later run sends only the rest."""


class IncompleteAttributionError(IHCApiError, TerminalError):
    """Some journeys got no credit (failed, skipped as too long, or unsent at the quota); nothing is returned."""


class TableauError(AttributionError):
    """The Hyper extract could not be published to Tableau (``reporting.tableau``); the message names the server
    and the cause, never the token's secret, and the subclasses say whether retrying may help."""


class TableauSignInError(TableauError, TerminalError):
    """Tableau refused the personal access token (a wrong name or secret, an expired or revoked token, a site the
    token's user is not on)."""


class TableauRefusedError(TableauError, TerminalError):
    """Tableau answered, but not as publishing needs: no project of that name on the site, or a refused publish
    (no permission, a data source of that name locked)."""


class TableauUnreachableError(TableauError, TransientError):
    """Tableau did not answer: connection refused, no answer within the timeout, or a server error (5xx)."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM stopped the process (``attribution.interrupts``): the open transaction rolls back,
    the run's record is closed as ``interrupted``, and the command exits with 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"Interrupted by {signal.Signals(signum).name}")

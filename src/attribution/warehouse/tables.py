"""Every table the pipeline reads or writes: the inputs, the outputs, the bookkeeping and the work tables
of scheduled runs, and the journey indexes.

Why one module: a column's name and type are decided once, for every warehouse, and every layer above
(journeys, store, reporting, the runners) reads them from here.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import (
    VARCHAR,
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeEngine

# REAL in SQLite, as in the challenge file; DOUBLE PRECISION elsewhere (money must not be 4-byte floats).
Real = Float(precision=53).with_variant(sqlite.REAL(), "sqlite")
# Text that may outgrow 256 bytes (JSON summaries, parameters, error lines): Redshift makes TEXT a VARCHAR(256).
LongText = Text().with_variant(VARCHAR(65535), "redshift")

metadata = MetaData()


def _key(*names: str) -> list[Column]:
    """Text primary-key columns (ids are hashes or names, never numbers)."""
    return [Column(name, Text, primary_key=True) for name in names]


def _required(kind: TypeEngine | type[TypeEngine], *names: str) -> list[Column]:
    """NOT NULL columns of one type."""
    return [Column(name, kind, nullable=False) for name in names]


session_sources = Table(
    "session_sources",
    metadata,
    *_key("session_id"),
    *_required(Text, "user_id", "event_date", "event_time", "channel_name"),
    *_required(Integer, "holder_engagement", "closer_engagement", "impression_interaction"),
)

conversions = Table(
    "conversions",
    metadata,
    *_key("conv_id"),
    *_required(Text, "user_id", "conv_date", "conv_time"),
    Column("revenue", Real, nullable=False),
)

session_costs = Table("session_costs", metadata, *_key("session_id"), Column("cost", Real, nullable=True))


NO_CONV_TYPE = ""
"""The conversion type recorded with the credit of a model that takes none (a key column cannot be NULL)."""


class CreditLabel(NamedTuple):
    """What made a credit row, and what a run replaces: its model and conversion type (``NO_CONV_TYPE`` for
    the models without one). Two labels' credit of one conversion live side by side."""

    model: str
    conv_type_id: str = NO_CONV_TYPE

    def __str__(self) -> str:
        return f"{self.model} ({self.conv_type_id})" if self.conv_type_id else self.model


LABEL_COLUMNS = tuple(CreditLabel._fields)


def _credit_detail() -> list[Column]:
    """What a credit row records beside ``ihc`` and its label: the IHC phases where the model gives them
    (``calibrate-ihc`` learns from the service's), and the credited session's date and channel as its journey
    had them (the report sums a date's credit from this table alone, so a run's report work follows the
    credit it changes, not the size of the session history)."""
    return [
        *(Column(name, Real) for name in ("initializer", "holder", "closer")),
        *(Column(name, Text) for name in ("event_date", "channel_name")),
    ]


attribution_customer_journey = Table(
    "attribution_customer_journey",
    metadata,
    *_required(Text, "conv_id", "session_id"),
    Column("ihc", Real, nullable=False),
    *_required(Text, *LABEL_COLUMNS),
    *_credit_detail(),
    # The conversion first, as before the label joined the key: a run finds the credit of its conversions by
    # their ids (then keeps its label's). Named, so a database whose table was re-keyed
    # (``schema.create_tables``) has the same key name as a new one.
    PrimaryKeyConstraint("conv_id", "session_id", *LABEL_COLUMNS, name="attribution_credit_key"),
    # The report reads a label's credit of a date from the index alone, grouped as the report is and in one
    # order whatever order the rows were written in (so sums are the same after reruns and daily runs). The
    # date leads, not the label: PostgreSQL would otherwise read a run's conversions by the label, looping.
    Index(
        "ix_attribution_credit_by_date",
        "event_date",
        "channel_name",
        *LABEL_COLUMNS,
        "conv_id",
        "session_id",
        "ihc",
    ),
)

channel_reporting = Table(
    "channel_reporting",
    metadata,
    *_required(Text, "channel_name", "date"),
    *_required(Real, "cost", "ihc", "ihc_revenue"),
    # The credit label the report counts (one at a time: ``reporting.channel_report``); nullable, so a table
    # made by an earlier version gets them added (its rows keep NULL until the next run rebuilds them).
    *(Column(name, Text) for name in LABEL_COLUMNS),
    PrimaryKeyConstraint("channel_name", "date"),
)

INPUT_COUNTS = ("sessions", "cost_rows", "cost_micros", "conversions", "revenue_micros", "journey_sessions")
"""A report date's inputs as whole numbers (``reporting.report_inputs``): its sessions, their cost rows and
cost in millionths, its conversions and their revenue in millionths, and the sessions of those conversions'
journeys."""
INPUT_IDS = ("last_session", "last_journey_session")
"""The greatest session id of a report date, and of its conversions' journeys (NULL: none)."""


def _fingerprint() -> list[Column]:
    """The fingerprint of a report date's inputs: ``INPUT_COUNTS``, ``INPUT_IDS``."""
    return [*_required(BigInteger, *INPUT_COUNTS), *(Column(name, Text) for name in INPUT_IDS)]


channel_reporting_inputs = Table(
    "channel_reporting_inputs",
    metadata,
    *_key("date"),
    *_fingerprint(),
    # what made the date's credit: the label, and a digest of the model's options and parameters and of the
    # journeys' cut (``pipeline.window.credit_stamp``)
    *_required(Text, *LABEL_COLUMNS, "made_by"),
)
"""What the report rows of each date were last built from, written with them: a run with a restatement window
redoes the dates whose inputs differ now (``reporting.report_inputs``)."""

attribution_runs = Table(
    "attribution_runs",
    metadata,
    *_key("run_id"),
    *_required(Text, "started_at"),
    Column("finished_at", Text),
    *_required(Text, "status", "model"),
    *(Column(name, Text) for name in ("range_start", "range_end")),
    Column("summary", LongText),
    Column("host", Text),
    Column("pid", Integer),
    # The run's lease (``store.runs``): its owner's last sign of life and how long that counts. Nullable, so
    # a table made by an earlier version gets them added (its records then count from ``started_at``).
    Column("heartbeat_at", Text),
    Column("lease_seconds", Integer),
)

attribution_failures = Table(
    "attribution_failures",
    metadata,
    *_key("conv_id"),
    *_required(Text, "run_id", "reason"),
    *_required(Integer, "attempts"),
    Column("last_error", LongText),
    *_required(Text, "failed_at"),
)

attribution_ihc_claims = Table(
    "attribution_ihc_claims",
    metadata,
    *_required(Text, "conv_id", "model", "conv_type_id", "run_id", "claimed_at"),
    PrimaryKeyConstraint("conv_id", "model", "conv_type_id"),
)
"""The conversions an IHC API run is sending, so another run at the same time skips them
(``store.claims``)."""

ihc_parameters = Table(
    "ihc_parameters",
    metadata,
    *_required(Text, "conv_type_id"),
    *_required(Integer, "version"),
    *_required(Text, "trained_at"),
    *_required(LongText, "parameters"),
    *_required(Integer, "journeys"),
    PrimaryKeyConstraint("conv_type_id", "version"),
)

STAGED_COUNTS = ("conversions", "journeys", "sessions", "without_sessions", "skipped")
"""A staged run's counts, kept beside its batches for the summary of the task that finishes it."""


def _run_and_batch() -> tuple[Column, ...]:
    return *_key("run_key"), Column("batch_id", Integer, primary_key=True)


# The work tables of scheduled runs: a scheduler runs every step as its own process, so journeys and credit between
# steps live here, keyed by run (two runs never read or delete each other's rows).
staged_runs = Table(
    "attribution_staged_runs",
    metadata,
    *_key("run_key"),
    *_required(Integer, "batches", *STAGED_COUNTS),
    # the days of its restatement window the run redoes (NULL: no window): finishing it replaces their credit
    Column("redo_days", Integer),
)
staged_journeys = Table(
    "attribution_staged_journeys",
    metadata,
    *_run_and_batch(),
    *_key("conv_id", "session_id"),
    *(Column(name, Real if name == "revenue" else Text) for name in ("conv_ts", "revenue", "timestamp")),
    Column("channel_name", Text),
    *(Column(name, Integer) for name in ("holder_engagement", "closer_engagement", "impression_interaction")),
    Column("conversion", Integer),
)
staged_credits = Table(
    "attribution_staged_credits",
    metadata,
    *_run_and_batch(),
    *_key("conv_id", "session_id"),
    Column("ihc", Real, nullable=False),
    *(Column(name, Text) for name in LABEL_COLUMNS),
    *_credit_detail(),
)
staged_left = Table("attribution_staged_left", metadata, *_run_and_batch(), *_key("conv_id"))
"""The IHC API journeys of a batch that another run at the same time had claimed or credited: that run sends
them (``store.claims``), and the run's summary counts them apart from those left unattributed."""
staged_inputs = Table("attribution_staged_inputs", metadata, *_key("run_key", "date"), *_fingerprint())
"""The inputs of a run's dates as its journeys were staged, recorded with its report when it finishes."""
WORK_TABLES = (staged_runs, staged_journeys, staged_credits, staged_left, staged_inputs)
"""A scheduled run's work tables (``store.work_tables``)."""

INPUT_TABLES = (session_sources, conversions, session_costs)
OUTPUT_TABLES = (
    attribution_customer_journey,
    channel_reporting,
    channel_reporting_inputs,
    attribution_runs,
    attribution_failures,
    ihc_parameters,
    attribution_ihc_claims,
)

# Indexes the pipeline adds to the input tables (they never change the tables' contents or columns).
# They live on copies of the tables in their own MetaData, so creating the input tables (generator,
# tests) does not create them: a user's challenge.db arrives without them and the first run adds them.
_index_metadata = MetaData()
_sessions = session_sources.to_metadata(_index_metadata)
_conversions = conversions.to_metadata(_index_metadata)
_costs = session_costs.to_metadata(_index_metadata)
JOURNEY_INDEXES = (
    # The journey join looks a user's sessions up by time; the other columns keep it index-only.
    Index(
        "ix_attribution_sessions_by_user_time",
        _sessions.c.user_id,
        _sessions.c.event_date,
        _sessions.c.event_time,
        _sessions.c.session_id,
        _sessions.c.channel_name,
        _sessions.c.holder_engagement,
        _sessions.c.closer_engagement,
        _sessions.c.impression_interaction,
    ),
    Index(
        "ix_attribution_conversions_by_time",
        _conversions.c.conv_date,
        _conversions.c.conv_time,
        _conversions.c.conv_id,
    ),
)
"""What every run reads its journeys through."""
RANGE_INDEXES = (
    # The report reads the sessions of the dates a run touches, grouped as the report is (so a day's work
    # costs a day, whatever the history); each group's ids come in key order, so the lookups of their
    # cost and credit sweep those indexes forward instead of jumping at random.
    Index(
        "ix_attribution_sessions_by_date",
        _sessions.c.event_date,
        _sessions.c.channel_name,
        _sessions.c.session_id,
    ),
    # A session's cost from the index alone (the table may have no key at all in a user's file).
    Index("ix_attribution_costs_by_session", _costs.c.session_id, _costs.c.cost),
)
"""What a bounded run reads the sessions of its dates and their cost through. An open range scans both
tables instead, so the first bounded run builds these: a first run over the whole history does not wait
for indexes it never reads."""
INPUT_INDEXES = JOURNEY_INDEXES + RANGE_INDEXES


def input_indexes(bounded: bool) -> tuple[Index, ...]:
    """The indexes a run reads through: a bounded run's (``RANGE_INDEXES`` too) or an open range's."""
    return INPUT_INDEXES if bounded else JOURNEY_INDEXES

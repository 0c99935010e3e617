"""The restatement window planned: which of its dates a run redoes, from what changed in their inputs.

Why: a window of N days used to redo all N every day, and said what changed only by comparing report rows.
Each date's inputs are now recorded with its report rows (``reporting.report_inputs``), so a run reads the
window's inputs in one grouped query and compares them with what was recorded:

- from the first date whose conversions' credit may differ (its conversions or their journeys changed, its
  credit was made by other options or parameters, or nothing was recorded for it) the run re-attributes
  every conversion, through its own days. One range, not the changed dates alone: a run attributes one
  time range (its journeys, the credit it replaces, the report dates that touches), and re-attributing a
  conversion whose inputs did not change gives it the same credit;
- a date before that one whose sessions or spend changed gets its report row rebuilt, its cost read anew
  (``ReportScope.recosted``); its credit stays, as it would be recomputed;
- the other dates are left as they are.

A model that learns from the run's range (Markov, Shapley) redoes the whole window: what it learns changes
with any input of the range. A run whose model is not the report's (``--report-model``) has no window plan:
it redoes the whole window, and its report does not change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from attribution.models.names import IHC_ENGINE
from attribution.pipeline.model_setup import reads_null_paths
from attribution.pipeline.settings import Settings
from attribution.reporting.report_inputs import (
    NOTHING,
    Fingerprint,
    Stamp,
    credit_changed,
    input_fingerprints,
    input_notes,
    record_inputs,
    recorded_inputs,
    report_changed,
)
from attribution.timerange import TimeRange


@dataclass(frozen=True)
class Review:
    """What a window's dates need at the report step, against what is recorded then: the dates whose cost
    is read anew, notes naming each change, and the dates with nothing recorded to compare with."""

    recosted: frozenset[str]
    notes: list[str]
    unrecorded: frozenset[str]


@dataclass(frozen=True)
class Window:
    """A run's restatement window: its ``dates`` (oldest first), of which it redoes the last ``redo_days``;
    the ``inputs`` of those dates and of the run's own, read before its journeys; the ``stamp`` of the credit
    it makes."""

    dates: tuple[str, ...]
    redo_days: int
    inputs: dict[str, Fingerprint]
    stamp: Stamp

    def narrowed(self, settings: Settings) -> Settings:
        """``settings`` reaching back ``redo_days`` only: the range the run attributes and reports."""
        return settings.replaced(restate_days=self.redo_days)

    @property
    def skipped(self) -> tuple[str, ...]:
        """The dates the run does not re-attribute."""
        return self.dates[: len(self.dates) - self.redo_days]

    def review(self, conn: Connection) -> Review:
        """Compare the window with the inputs recorded now (inside the report's transaction)."""
        recorded = recorded_inputs(conn, self.dates[0], self.dates[-1])
        recosted = frozenset(
            day for day in self.skipped if report_changed(recorded.get(day), self._now(day), self.stamp)
        )
        notes = [
            note
            for day in self.dates
            if (was := recorded.get(day)) is not None and was.stamp == self.stamp
            for note in input_notes(day, was.fingerprint, self._now(day))
        ]
        unrecorded = frozenset(
            day for day in self.dates if day not in recorded or recorded[day].stamp != self.stamp
        )
        return Review(recosted, [self._plan_note(recosted), *notes], unrecorded)

    def _plan_note(self, recosted: frozenset[str]) -> str:
        """What the run redid of its window, in one line."""
        redone = (
            f"conversions re-attributed from {self.dates[-self.redo_days]}"
            if self.redo_days
            else "no conversion or journey changed, none re-attributed"
        )
        rebuilt = f"; spend and sessions read anew on {', '.join(sorted(recosted))}" if recosted else ""
        return f"restatement window {self.dates[0]} to {self.dates[-1]}: {redone}{rebuilt}"

    def record(self, conn: Connection, time_range: TimeRange, recosted: frozenset[str]) -> None:
        """Record the inputs of the dates the run rebuilt: those of the ``time_range`` it redid and the
        ``recosted`` (``report_inputs.record_inputs``)."""
        record_inputs(conn, self.inputs, time_range, recosted, self.stamp)

    def _now(self, day: str) -> Fingerprint:
        return self.inputs.get(day, NOTHING)


def plan_window(settings: Settings, engine: Engine) -> Window | None:
    """The run's window and the days of it to redo, from its inputs read now, before its journeys (``None``:
    no window, or the run does not rebuild the report)."""
    dates = settings.restated_dates
    if not dates or settings.report_label != settings.credit_label:
        return None
    stamp = credit_stamp(settings, engine)
    span = settings.asked_range.date_span()
    assert span is not None  # a window implies a bounded range
    with engine.connect() as conn:
        inputs = input_fingerprints(conn, dates[0], span[1], settings.journey_options)
        recorded = recorded_inputs(conn, dates[0], dates[-1])
    if reads_null_paths(settings.model.name):
        return Window(tuple(dates), len(dates), inputs, stamp)
    changed = (
        index
        for index, day in enumerate(dates)
        if credit_changed(recorded.get(day), inputs.get(day, NOTHING), stamp)
    )
    first = next(changed, len(dates))
    return Window(tuple(dates), len(dates) - first, inputs, stamp)


def credit_stamp(settings: Settings, engine: Engine) -> Stamp:
    """What makes the run's credit from its journeys: its label, and a digest of the model's options, the
    IHC engine's parameters (the latest stored for the conversion type) and how journeys are cut."""
    options = settings.journey_options
    made = {
        "options": settings.model.options(),
        "journeys": [options.lookback_days, options.drop_impressions, options.skip_bad_rows],
    }
    if settings.model.name == IHC_ENGINE:
        from attribution.store.parameters import load_parameters  # numpy: IHC runs only

        made["parameters"] = load_parameters(engine, settings.ihc_api.conv_type_id).model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()
    return Stamp(*settings.credit_label, digest)

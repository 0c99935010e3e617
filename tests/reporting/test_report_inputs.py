"""The fingerprint of a report date's inputs: one grouped query gives, on every warehouse, the counts and
sums a plain-Python count of the same rows gives; its notes say each change exactly."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from attribution.errors import IntegrityError
from attribution.journeys import JourneyOptions
from attribution.reporting.report_inputs import Fingerprint, input_fingerprints, input_notes
from attribution.warehouse.engine import connect
from tests.builders import Case, Session
from tests.oracle import input_fingerprint
from tests.strategies import HISTORY_DAYS, HISTORY_TIMES, cases


def fingerprints(db: str, first: str, last: str) -> dict[str, Fingerprint]:
    engine = connect(db)
    with engine.connect() as conn:
        found = input_fingerprints(conn, first, last, JourneyOptions())
    engine.dispose()
    return found


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases(times=HISTORY_TIMES))
def test_the_warehouse_fingerprints_the_rows_a_plain_count_finds(make_db, case):
    found = fingerprints(make_db(case), HISTORY_DAYS[1], HISTORY_DAYS[-2])
    expected = {day: input_fingerprint(case, day) for day in HISTORY_DAYS[1:-1]}
    assert found == {
        day: fingerprint for day, fingerprint in expected.items() if fingerprint != Fingerprint()
    }


def test_each_change_is_named_with_its_exact_amount():
    before = Fingerprint(sessions=3, cost_rows=3, cost_micros=1_000_000, last_session="s9")
    after = before._replace(cost_micros=1_001_000, sessions=2, last_session="s8")
    assert input_notes("2023-09-02", before, after) == [
        "spend restated on 2023-09-02: +0.001 (1.00 -> 1.001)",  # under a cent, not shown as +0.00
        "sessions removed on 2023-09-02: -1 session",
    ]
    swapped = before._replace(last_session="t1")
    assert input_notes("2023-09-02", before, swapped) == [
        "sessions changed on 2023-09-02: as many as before, other ids"
    ]
    fewer = Fingerprint(conversions=2, revenue_micros=30_000_000, journey_sessions=4)
    assert input_notes("2023-09-03", fewer, fewer._replace(conversions=1, revenue_micros=-1_250_000)) == [
        "conversions changed on 2023-09-03: -1 conversion, revenue -31.25"
    ]


def test_spend_beyond_a_64_bit_sum_is_one_line(make_db):
    """Each cost is within the bound the input checks allow; their sum in millionths is not."""
    sessions = [Session(f"s{i}", "u1", "2023-09-02 10:00:00", cost=9e12) for i in range(2)]
    with pytest.raises(IntegrityError, match=r"^Cannot fingerprint the inputs of 2023-09-02 to 2023-09-02: "):
        fingerprints(make_db(Case(sessions=sessions)), "2023-09-02", "2023-09-02")

"""Hypothesis strategies: small random input databases that hit the traps often.

Timestamps come from a coarse grid so that equal times (session at a conversion's time, two sessions at
once) and repeat converters happen in most examples.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import strategies as st

from tests.builders import Case, Conversion, Session

CHANNELS = ("Direct Traffic", "Paid Search Brand", "FB & IG Ads", "Organic Traffic", "=Formula")
TIMES = [f"2023-09-0{day} {hour:02d}:00:00" for day in range(1, 5) for hour in (0, 6, 12, 18)]
USERS = ("u1", "u2", "u3", "u4")
COSTS = st.one_of(st.none(), st.just(0.0), st.floats(0.01, 50, allow_nan=False).map(lambda x: round(x, 2)))


@st.composite
def cases(
    draw: st.DrawFn, max_sessions: int = 14, max_conversions: int = 6, times: list[str] = TIMES
) -> Case:
    """A random case: a few users, sessions and conversions on a shared time grid (``times``), mixed
    costs."""
    n_sessions = draw(st.integers(0, max_sessions))
    sessions = [
        Session(
            session_id=f"s{i:02d}",
            user_id=draw(st.sampled_from(USERS)),
            timestamp=draw(st.sampled_from(times)),
            channel=draw(st.sampled_from(CHANNELS)),
            holder=draw(st.integers(0, 1)),
            closer=draw(st.integers(0, 1)),
            impression=draw(st.integers(0, 1)),
            cost=draw(COSTS),
            has_cost_row=draw(st.booleans()),
        )
        for i in range(n_sessions)
    ]
    n_conversions = draw(st.integers(0, max_conversions))
    conversions = [
        Conversion(
            conv_id=f"c{i:02d}",
            user_id=draw(st.sampled_from(USERS)),
            timestamp=draw(st.sampled_from(times)),
            revenue=draw(st.floats(1, 500, allow_nan=False).map(lambda x: round(x, 2))),
        )
        for i in range(n_conversions)
    ]
    return Case(sessions=sessions, conversions=conversions)


BAD_TIMES = ("9:30:00", "09:30:00-05:00", "11:30:00+02:00", "09:30:00.5", "24:00:00")
HUGE_MONEY = (float("inf"), float("-inf"), 1.7e308, 1e13, -1e13)
"""Money the report cannot sum exactly: infinite (SQLite reads ``9e999`` as infinity) or beyond the bound."""
BAD_DATES = ("2023-02-30", "2023/09/02", "2023-09-02T10:00:00", "2023-13-01")
Spoilt = tuple[list[Session], list[Conversion], list[tuple[str, object]]]
"""What takes a valid session's and a valid conversion's place (themselves when unchanged), and cost rows
to add."""


def _spoilers(draw: st.DrawFn, s: Session, c: Conversion) -> dict[str, Spoilt]:
    """Each defect kind, as it spoils the session ``s`` or the conversion ``c``."""
    time, day = draw(st.sampled_from(BAD_TIMES)), draw(st.sampled_from(BAD_DATES))
    return {
        "duplicate conv_id": ([s], [c, replace(c, user_id=draw(st.sampled_from(USERS)))], []),
        "duplicate session_id": ([s, replace(s, has_cost_row=False)], [c], []),
        "duplicate cost row": ([replace(s, has_cost_row=True)], [c], [(s.session_id, 1.0)]),
        "session time": ([replace(s, timestamp=f"{s.timestamp[:10]} {time}")], [c], []),
        "session date": ([replace(s, timestamp=f"{day} {s.timestamp[11:]}")], [c], []),
        "conversion time": ([s], [replace(c, timestamp=f"{c.timestamp[:10]} {time}")], []),
        "text revenue": ([s], [replace(c, revenue="ten")], []),
        "NULL revenue": ([s], [replace(c, revenue=None)], []),
        "engagement flag": ([replace(s, closer=draw(st.sampled_from(["yes", 300, -1])))], [c], []),
        "text cost": ([replace(s, cost="n/a", has_cost_row=True)], [c], []),
        "revenue beyond the report": ([s], [replace(c, revenue=draw(st.sampled_from(HUGE_MONEY)))], []),
        "cost beyond the report": (
            [replace(s, cost=draw(st.sampled_from(HUGE_MONEY)), has_cost_row=True)],
            [c],
            [],
        ),
        "NULL channel": ([replace(s, channel=None)], [c], []),
        "NULL user": ([replace(s, user_id=None)], [c], []),
    }


DEFECT_KINDS = (
    "duplicate conv_id",
    "duplicate session_id",
    "duplicate cost row",
    "session time",
    "session date",
    "conversion time",
    "text revenue",
    "NULL revenue",
    "engagement flag",
    "text cost",
    "revenue beyond the report",
    "cost beyond the report",
    "NULL channel",
    "NULL user",
)
"""The keys of ``_spoilers``."""


@st.composite
def defective_cases(draw: st.DrawFn) -> tuple[str, Case]:
    """A random valid case with one defect injected (a duplicate key, a malformed timestamp, a NULL, a flag
    out of range, text in a number column, money
    beyond what the report sums): the defect's kind and the case, to be written unkeyed."""
    case = draw(cases(max_sessions=8, max_conversions=4))
    sessions = case.sessions or [Session("s00", "u1", "2023-09-01 06:00:00", cost=1.0)]
    conversions = case.conversions or [Conversion("c00", "u1", "2023-09-02 12:00:00")]
    i, j = draw(st.integers(0, len(sessions) - 1)), draw(st.integers(0, len(conversions) - 1))
    kind = draw(st.sampled_from(DEFECT_KINDS))
    spoilt_sessions, spoilt_conversions, costs = _spoilers(draw, sessions[i], conversions[j])[kind]
    return kind, Case(
        sessions=[*sessions[:i], *spoilt_sessions, *sessions[i + 1 :]],
        conversions=[*conversions[:j], *spoilt_conversions, *conversions[j + 1 :]],
        extra_costs=costs,
    )


HISTORY_DAYS = [f"2023-09-{day:02d}" for day in range(1, 7)]
HISTORY_TIMES = [f"{day} {hour:02d}:00:00" for day in HISTORY_DAYS for hour in (0, 6, 12, 18)]


@dataclass(frozen=True)
class Restated:
    """Spend restated at the source: the ``pick``-th session dated before the run (by id, modulo their
    number) gets one cost row of ``cost``."""

    pick: int
    cost: float


Change = Session | Restated
"""What lands between two daily runs: a late session (dated before the run's day), or restated spend."""


@st.composite
def histories(draw: st.DrawFn, days: list[str] = HISTORY_DAYS) -> tuple[Case, list[list[Change]]]:
    """A case over ``days`` and, for the daily run of each day, what lands just before it: sessions dated
    one to all of the earlier days (so within a short restatement window and beyond it) and spend restated
    on earlier sessions."""
    case = draw(cases(max_sessions=16, max_conversions=7, times=[t for t in HISTORY_TIMES if t[:10] in days]))
    changes: list[list[Change]] = [[]]
    for index in range(1, len(days)):
        late = [
            Session(
                session_id=f"late{index}{number}",
                user_id=draw(st.sampled_from(USERS)),
                timestamp=f"{days[index - draw(st.integers(1, index))]} {draw(st.sampled_from((0, 6, 12, 18))):02d}:00:00",
                channel=draw(st.sampled_from(CHANNELS)),
                cost=draw(COSTS),
                has_cost_row=draw(st.booleans()),
            )
            for number in range(draw(st.integers(0, 2)))
        ]
        restated = [
            Restated(draw(st.integers(0, 99)), draw(st.floats(0, 80).map(lambda x: round(x, 2))))
            for _ in range(draw(st.integers(0, 2)))
        ]
        changes.append([*late, *restated])
    return case, changes

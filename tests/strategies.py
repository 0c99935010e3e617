"""Hypothesis strategies: small random input databases that hit the traps often.

Timestamps come from a coarse grid so that equal times (session at a conversion's time, two sessions at
once) and repeat converters happen in most examples.
"""

from __future__ import annotations

from hypothesis import strategies as st

from tests.builders import Case, Conversion, Session

CHANNELS = ("Direct Traffic", "Paid Search Brand", "FB & IG Ads", "Organic Traffic", "=Formula")
TIMES = [f"2023-09-0{day} {hour:02d}:00:00" for day in range(1, 5) for hour in (0, 6, 12, 18)]
USERS = ("u1", "u2", "u3", "u4")


@st.composite
def cases(draw: st.DrawFn, max_sessions: int = 14, max_conversions: int = 6) -> Case:
    """A random case: a few users, sessions and conversions on a shared time grid, mixed costs."""
    n_sessions = draw(st.integers(0, max_sessions))
    sessions = [
        Session(
            session_id=f"s{i:02d}",
            user_id=draw(st.sampled_from(USERS)),
            timestamp=draw(st.sampled_from(TIMES)),
            channel=draw(st.sampled_from(CHANNELS)),
            holder=draw(st.integers(0, 1)),
            closer=draw(st.integers(0, 1)),
            impression=draw(st.integers(0, 1)),
            cost=draw(
                st.one_of(
                    st.none(), st.just(0.0), st.floats(0.01, 50, allow_nan=False).map(lambda x: round(x, 2))
                )
            ),
            has_cost_row=draw(st.booleans()),
        )
        for i in range(n_sessions)
    ]
    n_conversions = draw(st.integers(0, max_conversions))
    conversions = [
        Conversion(
            conv_id=f"c{i:02d}",
            user_id=draw(st.sampled_from(USERS)),
            timestamp=draw(st.sampled_from(TIMES)),
            revenue=draw(st.floats(1, 500, allow_nan=False).map(lambda x: round(x, 2))),
        )
        for i in range(n_conversions)
    ]
    return Case(sessions=sessions, conversions=conversions)

"""Hand-built cases shared by the tests: every trap of the challenge data, and paid traffic on top."""

from __future__ import annotations

from tests.builders import Case, Conversion, Session

TRAPS = Case(
    sessions=[
        Session("a1", "u1", "2023-09-01 10:00:00", "Paid Search Brand"),
        Session("a2", "u1", "2023-09-02 10:00:00", "Direct Traffic", closer=1),
        Session("a3", "u1", "2023-09-03 12:00:00", "FB & IG Ads"),  # exactly at c1: not before it
        Session("b1", "u2", "2023-09-04 09:00:00"),  # after u2's only conversion
        Session("d2", "u3", "2023-09-02 08:00:00", "Referral"),  # same time as d1: ordered by id
        Session("d1", "u3", "2023-09-02 08:00:00", "Newsletter & Email", impression=1),
        Session("e1", "u9", "2023-09-02 08:00:00", "TikTok Ads"),  # a user who never converts
    ],
    conversions=[
        Conversion("c1", "u1", "2023-09-03 12:00:00"),
        Conversion("c2", "u1", "2023-09-05 08:00:00"),  # repeat converter: shares a1, a2 with c1
        Conversion("c3", "u2", "2023-09-02 00:00:00"),  # no earlier session
        Conversion("c4", "u3", "2023-09-03 00:00:00"),
    ],
)


PAID = Case(
    sessions=[
        *TRAPS.sessions,
        Session("p1", "u1", "2023-09-01 11:00:00", "Paid Search Brand", cost=2.5),
        Session("p2", "u3", "2023-09-01 11:00:00", "Paid Search Brand", cost=None),
        Session("p3", "u9", "2023-09-04 11:00:00", "TikTok Ads", cost=4.0),
        Session("p4", "u9", "2023-09-04 12:00:00", "TikTok Ads", cost=1.0, has_cost_row=False),
    ],
    conversions=[*TRAPS.conversions, Conversion("c5", "u9", "2023-09-05 00:00:00", 40.0)],
)

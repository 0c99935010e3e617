"""The local IHC engine's shipped defaults: calibrated on real answers of the vendor's IHC service.

Where they come from: ``attribution calibrate-ihc --answers ihc-real-answers.csv`` (the fit of
``attribution.models.ihc_calibration.calibrate``) on the whole of the project's fixture of real API
answers: 975 real journeys (1,894 sessions) of one account's conversion type, as scored by
``POST /v1/compute_ihc`` (see docs/models.md, "Calibration"). Rounded to 4 decimals.

Why the knots sit where they do: the service gives a later session no initializer share below a gap of
about two days, and its closer falls steeply within the first minutes, then roughly linearly in log-time
to a few per cent after a week; knots are denser where the answers bend.
"""

from __future__ import annotations

from attribution.models.curves import Surface, TimeCurve

INITIALIZER_WEIGHT = 0.345
HOLDER_WEIGHT = 0.380
CLOSER_WEIGHT = 0.275

INITIALIZER_KNOTS_HOURS = (48.0, 60.0, 72.0, 96.0, 144.0, 240.0, 720.0)
INITIALIZER_VALUES = (0.0, 0.0129, 0.029, 0.0942, 0.2365, 0.5935, 1.0)
INITIALIZER_CURVE = TimeCurve(knots=INITIALIZER_KNOTS_HOURS, values=INITIALIZER_VALUES)

CLOSER_KNOTS_HOURS = (0.1, 0.12, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 48.0, 72.0, 120.0, 168.0, 240.0)
CLOSER_VALUES = (
    1.0,
    0.9267,
    0.8626,
    0.7744,
    0.6697,
    0.6049,
    0.541,
    0.5016,
    0.4781,
    0.399,
    0.3373,
    0.271,
    0.1596,
    0.0838,
    0.0266,
)
CLOSER_CURVE = TimeCurve(knots=CLOSER_KNOTS_HOURS, values=CLOSER_VALUES)

HOLDER_INITIALIZER_KNOTS = (0.0, 0.15, 0.85, 1.0)
HOLDER_CLOSER_KNOTS = (0.0, 0.25, 0.5, 0.75, 1.0)
HOLDER_VALUES = (
    (1.0, 0.8657, 0.7113, 0.5154, 0.2503),
    (0.9339, 0.819, 0.6631, 0.4804, 0.2133),
    (0.4247, 0.3529, 0.0, 0.0, 0.0),
    (0.2507, 0.1861, 0.1256, 0.1251, 0.1),
)
"""Rows: the session's initializer share at ``HOLDER_INITIALIZER_KNOTS``; columns: its closer share. The
corner (1, 1) is never reached: only a one-session journey's session holds both, and it has no holder."""
HOLDER_SURFACE = Surface(
    initializer_knots=HOLDER_INITIALIZER_KNOTS, closer_knots=HOLDER_CLOSER_KNOTS, values=HOLDER_VALUES
)

DIRECT_TRAFFIC = "Direct Traffic"
CHANNEL_WEIGHTS: dict[str, dict[str, float]] = {
    "initializer": {DIRECT_TRAFFIC: 0.811},
    "holder": {DIRECT_TRAFFIC: 0.9496},
    "closer": {DIRECT_TRAFFIC: 1.0783},
}
"""Per phase, the channels whose weight is not 1: only Direct Traffic's differs measurably."""

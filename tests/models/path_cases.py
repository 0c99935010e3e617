"""Small hand-written paths and journeys for the path-trained models (Markov, Shapley)."""

from __future__ import annotations

import polars as pl

from attribution.vocabulary import JOURNEY_SCHEMA, PATH_SCHEMA


def paths_frame(paths: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """Null paths: each id's channels in time order, one minute apart."""
    rows = [
        {
            "path_id": path_id,
            "timestamp": f"2023-09-01 {i // 60:02d}:{i % 60:02d}:00",
            "session_id": f"{path_id}s{i}",
            "channel_name": ch,
        }
        for path_id, channels in paths.items()
        for i, ch in enumerate(channels)
    ]
    return pl.DataFrame(rows, schema=PATH_SCHEMA)


def journeys_frame(journeys: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """Converting journeys: each conversion's channels in time order, one minute apart."""
    rows = [
        {
            "conv_id": conv_id,
            "conv_ts": "2023-09-02 00:00:00",
            "revenue": 10.0,
            "session_id": f"{conv_id}s{i}",
            "timestamp": f"2023-09-01 {i // 60:02d}:{i % 60:02d}:00",
            "channel_name": ch,
            "holder_engagement": 1,
            "closer_engagement": 0,
            "impression_interaction": 0,
            "conversion": int(i == len(channels) - 1),
        }
        for conv_id, channels in journeys.items()
        for i, ch in enumerate(channels)
    ]
    return pl.DataFrame(rows, schema={**JOURNEY_SCHEMA, "conversion": pl.Int8})


def by_session(credits: pl.DataFrame) -> dict[str, float]:
    return dict(credits.select("session_id", "ihc").iter_rows())


# The worked example of docs/models.md: three conversions, two null paths, three channels.
CONVERSIONS = journeys_frame({"c1": ("A", "B"), "c2": ("A",), "c3": ("B", "C")})
NULLS = paths_frame({"n1": ("A", "C"), "n2": ("C",)})

# Null paths over the contract's channels, for the Hypothesis contract tests.
CONTRACT_NULLS = paths_frame(
    {
        "n1": ("Direct Traffic",),
        "n2": ("Referral", "FB & IG Ads"),
        "n3": ("Paid Search Brand", "Direct Traffic", "Direct Traffic"),
    }
)

"""One typed settings object for a run.

Precedence: explicit values (CLI flags, DAG params) > environment (``ATTRIBUTION_*``) > defaults.
Why typed: a bad value fails once, up front, with one line naming it, before any work is done.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PositiveInt, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from attribution.errors import ConfigError
from attribution.journeys import DEFAULT_CHUNK_CONVERSIONS, JourneyOptions
from attribution.timerange import TimeRange
from attribution.warehouse import redact_url

DEFAULT_DB = "challenge.db"
DEFAULT_MODEL = "ihc"
DEFAULT_OUT = Path("reports")


class Settings(BaseSettings):
    """What a run reads, how it cuts journeys, which model it uses and where it writes."""

    model_config = SettingsConfigDict(env_prefix="ATTRIBUTION_", frozen=True, extra="forbid")

    db: str = Field(DEFAULT_DB, description="SQLite file path or SQLAlchemy URL")
    start: str | None = Field(None, description="first conversion time included (ISO date or timestamp)")
    end: str | None = Field(None, description="first conversion time excluded (ISO date or timestamp)")
    model: str = DEFAULT_MODEL
    out: Path = DEFAULT_OUT
    lookback_days: PositiveInt | None = None
    drop_impressions: bool = False
    chunk_conversions: PositiveInt = DEFAULT_CHUNK_CONVERSIONS

    @property
    def time_range(self) -> TimeRange:
        return TimeRange.parse(self.start, self.end)

    @property
    def journey_options(self) -> JourneyOptions:
        return JourneyOptions(lookback_days=self.lookback_days, drop_impressions=self.drop_impressions)

    @property
    def safe_db(self) -> str:
        """The database as it may be shown: any password hidden."""
        return redact_url(self.db)


def load_settings(**explicit: object) -> Settings:
    """Settings from explicit values (``None`` means not given), the environment and the defaults."""
    given = {key: value for key, value in explicit.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        raise ConfigError(f"Bad setting {field}: {error['msg']}") from None
    settings.time_range  # noqa: B018 - validate the range now, not half-way through a run
    return settings

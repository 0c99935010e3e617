"""The settings' defaults that the CLI's help shows, apart from ``settings`` (which imports Pydantic and
the pipeline): ``attribution --help`` stays fast."""

DEFAULT_DB = "challenge.db"
DEFAULT_MODEL = "ihc"
DEFAULT_OUT = "reports"

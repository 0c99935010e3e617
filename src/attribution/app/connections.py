"""Settings from a scheduler's connections, each given as a plain mapping of its fields.

Why mappings, not Airflow's ``Connection``: the package never imports Airflow, and these rules are tested
without it. A connection is ``conn_id``, ``conn_type``, ``host``, ``port``, ``login``, ``password``, ``schema``
and ``extra`` (its JSON extra, decoded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attribution.errors import ConfigError

Connection = Mapping[str, Any]
DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "redshift": "redshift+redshift_connector",
}
"""The SQLAlchemy driver of each connection type a warehouse may be given as (SQLite aside)."""


def connection_url(conn: Connection) -> str:
    """A SQLAlchemy URL from a connection of type ``sqlite`` (host: the file), ``postgres`` or ``redshift``.

    Why not Airflow's own URI: it percent-encodes a SQLite path and names no driver for psycopg.
    """
    from sqlalchemy.engine import URL

    if conn["conn_type"] == "sqlite":
        return f"sqlite:///{conn.get('host') or conn.get('schema')}"
    if conn["conn_type"] in DRIVERS:
        parts = (conn.get(name) or None for name in ("login", "password", "host", "port", "schema"))
        return URL.create(DRIVERS[conn["conn_type"]], *parts).render_as_string(hide_password=False)
    raise ConfigError(
        f"Connection {conn['conn_id']!r} has type {conn['conn_type']!r}: add it by URI as sqlite:////path/to.db "
        "or postgresql://user:password@host:5432/database, or use a postgres or redshift connection, or set the "
        "Variable attribution_db_url"
    )


def http_url(conn: Connection) -> str | None:
    """The base URL an HTTP connection names: its host if that is a URL, else scheme, host and port."""
    host = conn.get("host")
    if not host or "://" in host:
        return host or None
    scheme = conn.get("schema") or (conn["conn_type"] if conn["conn_type"] in ("http", "https") else "https")
    port = conn.get("port")
    return f"{scheme}://{host}{f':{port}' if port else ''}"


def s3_options(conn: Connection) -> dict[str, Any]:
    """s3fs options from an ``aws`` connection: login = access key id, password = secret key, extra
    ``endpoint_url``, ``region_name`` and ``aws_session_token``; only what is given, so the environment
    fills the rest."""
    if conn["conn_type"] not in ("aws", "s3"):
        raise ConfigError(
            f"Connection {conn['conn_id']!r} has type {conn['conn_type']!r}: give the object store as type aws "
            "(login: access key id, password: secret key, extra: endpoint_url, region_name)"
        )
    extra = conn.get("extra") or {}
    region = extra.get("region_name")
    options = {
        "key": conn.get("login"),
        "secret": conn.get("password"),
        "token": extra.get("aws_session_token"),
        "endpoint_url": extra.get("endpoint_url"),
        "client_kwargs": {"region_name": region} if region else None,
    }
    return {name: value for name, value in options.items() if value}


TABLEAU_FIELDS = {
    "tableau_url": "host",
    "tableau_token_name": "login",
    "tableau_token_secret": "password",
    "tableau_project": 'extra "project"',
}
"""The settings a Tableau connection must give, and where in the connection they are."""


def tableau_settings(conn: Connection) -> dict[str, Any]:
    """Settings from a Tableau connection: host = the server's URL, login = the personal access token's name,
    password = its secret, extra ``site`` (the site's content URL; none: the default site), ``project`` and
    ``datasource`` (default: ``channel_reporting``)."""
    extra = conn.get("extra") or {}
    settings = {
        "tableau_url": http_url(conn),
        "tableau_token_name": conn.get("login"),
        "tableau_token_secret": conn.get("password"),
        "tableau_site": extra.get("site"),
        "tableau_project": extra.get("project"),
        "tableau_datasource": extra.get("datasource"),
    }
    if missing := [where for name, where in TABLEAU_FIELDS.items() if not settings[name]]:
        raise ConfigError(
            f"Connection {conn['conn_id']!r} lacks its {', '.join(missing)}: host = the Tableau server's URL, "
            'login = the personal access token\'s name, password = its secret, extra {"site": ..., "project": ...}'
        )
    return {name: value for name, value in settings.items() if value is not None}

"""A DAG run whose report files go to an object store, with the credentials and endpoint from the Airflow
connection ``attribution_storage`` only (none in the environment), against moto's S3 server."""

from __future__ import annotations

import json
import uuid

from attribution import load_settings, run
from tests.dags.conftest import DAYS, run_dag
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, moto_server, objects, s3_client, use_endpoint

RANGE = {"start": DAYS[0], "end": DAYS[2]}


def test_a_run_uploads_its_reports_with_the_storage_connection_and_keeps_the_key_secret(
    pipeline_dag, warehouse, monkeypatch, airflow_home, tmp_path, capfd
):
    db = warehouse()
    bucket = f"dag-{uuid.uuid4().hex[:12]}"
    with moto_server() as endpoint:
        s3_client(endpoint).create_bucket(Bucket=bucket)
        use_endpoint(monkeypatch, None, credentials=False)
        connection = {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": endpoint, "region_name": REGION},
        }
        monkeypatch.setenv("AIRFLOW_CONN_ATTRIBUTION_STORAGE", json.dumps(connection))
        monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_OUT", f"s3://{bucket}/daily")
        monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_FORMATS", "csv,parquet")
        dag_run = run_dag(pipeline_dag, **RANGE, model="linear")
        assert dag_run.state == "success"
        stored = objects(s3_client(endpoint), bucket)
    twin = run(
        load_settings(db=str(db), out=str(tmp_path / "twin"), formats=("csv",), model="linear", **RANGE)
    )
    assert sorted(stored) == ["daily/channel_reporting.csv", "daily/channel_reporting.parquet"]
    with open(twin.report_paths["csv"], "rb") as local:
        assert stored["daily/channel_reporting.csv"] == local.read()
    captured = capfd.readouterr()
    assert SECRET_KEY not in captured.out + captured.err
    for path in [db, *airflow_home.rglob("*")]:
        assert not path.is_file() or SECRET_KEY.encode() not in path.read_bytes(), path

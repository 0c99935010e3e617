"""The benchmarks' server logs go to a private temporary folder, never to a fixed path in the shared
temporary folder, where anyone may have planted a link."""

from __future__ import annotations

import tempfile

import pytest

from tests.builders import write_case
from tests.cases import PAID


def test_the_ihc_api_benchmark_never_writes_through_a_link_planted_in_the_temporary_folder(
    tmp_path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.syspath_prepend("benchmarks")
    import ihc_api

    shared = tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    victim = tmp_path / "victim.txt"
    victim.write_text("not the benchmark's")
    (shared / "ihc-benchmark-server.log").symlink_to(victim)
    db = tmp_path / "paid.db"
    write_case(str(db), PAID)
    result = ihc_api.bench(db, latency_ms=0.0)
    assert [run["journeys_ok"] for run in result["runs"]] == [result["journeys"]] * 2
    assert victim.read_text() == "not the benchmark's"
    assert [path.name for path in shared.iterdir()] == ["ihc-benchmark-server.log"]  # its own folder is gone

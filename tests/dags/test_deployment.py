"""The project's install files: a lock pinning every distribution with its hashes, the Astro requirements
pinned as in the lock, an example settings file without secrets, and an install whose Airflow CLI prints
clean JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.dags.conftest import DAG_ID, REPO


def pins(path: str) -> dict[str, str]:
    found = re.findall(r"^([\w.\-]+)(?:\[[\w,\-]+\])?==(\S+)", (REPO / path).read_text(), re.MULTILINE)
    return {canonicalize_name(name): version for name, version in found}


def test_every_requirement_of_the_lock_is_pinned_exactly_with_its_hashes():
    lines = (REPO / "requirements.lock").read_text().replace("\\\n", " ").splitlines()
    requirements = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    unpinned = [line for line in requirements if not re.match(r"^[\w.\-]+(\[[\w,\-]+\])?==[^\s*]+\s", line)]
    unhashed = [line for line in requirements if not re.search(r"\s--hash=sha256:[0-9a-f]{64}(\s|$)", line)]
    assert requirements and not unpinned and not unhashed, unpinned + unhashed
    assert len(requirements) == len(pins("requirements.lock"))  # every requirement line is a pin


def test_astro_requirements_are_the_project_dependencies_pinned_as_in_the_lock():
    lock, astro = pins("requirements.lock"), pins("requirements.txt")
    assert {name: lock.get(name) for name in astro} == astro
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {canonicalize_name(Requirement(text).name) for text in project} <= set(astro)
    assert not any(name.startswith("apache-airflow") for name in astro)  # the runtime image ships Airflow


def test_the_example_airflow_settings_hold_no_secret():
    settings = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())["airflow"]
    assert {c["conn_id"] for c in settings["connections"]} == {"attribution_db", "ihc_api"}
    assert not any(c.get("conn_password") for c in settings["connections"])
    assert not any(
        "key" in v["variable_name"] or "password" in v["variable_name"] for v in settings["variables"]
    )


def test_the_dockerfile_builds_on_the_astro_runtime_and_checks_the_pinned_airflow():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM astrocrpublic\.azurecr\.io/runtime:3\.3-\d+-python-3\.11$", dockerfile, re.M)
    assert "'3.3.2'" in dockerfile and pins("requirements.lock")["apache-airflow"] == "3.3.2"


def test_airflow_lists_the_dags_as_json_on_stdout_alone(airflow_home):
    """Airflow's CLI warns on stdout when the graphviz package is missing, so the JSON would not parse."""
    for command in (["dags", "reserialize"], ["dags", "list", "--output", "json"]):
        done = subprocess.run(
            [sys.executable, "-m", "airflow", *command],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
    assert [dag["dag_id"] for dag in json.loads(done.stdout)] == [DAG_ID]


def test_astro_requirements_carry_the_locks_hashes_so_pip_checks_every_download():
    def hashed(path: str) -> dict[str, set[str]]:
        blocks = re.findall(
            r"(?ms)^([\w.\-]+)(?:\[[\w,\-]+\])?==\S+ \\\n(.*?)(?=^\S|\Z)", (REPO / path).read_text()
        )
        return {
            canonicalize_name(name): set(re.findall(r"sha256:[0-9a-f]{64}", block)) for name, block in blocks
        }

    lock, astro = hashed("requirements.lock"), hashed("requirements.txt")
    assert astro.keys() == pins("requirements.txt").keys()  # every requirement has hashes
    assert all(astro[name] and astro[name] == lock[name] for name in astro)


def test_every_install_path_checks_hashes():
    makefile = (REPO / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert all("--require-hashes" in line or "--no-build-isolation" in line for line in installs), installs
    assert "--upgrade" not in makefile
    assert re.search(
        r"^pip==[\d.]+ \\\n    --hash=sha256:[0-9a-f]{64}", (REPO / "requirements-pip.lock").read_text(), re.M
    )
    assert {"hatchling", "editables", "trove-classifiers"} <= pins("requirements.lock").keys()

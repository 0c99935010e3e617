"""The import contracts bite: each fails on a deliberate violation, and every dependency is classified.

The violations are made in a copy of the package (a temporary folder), and the contracts run on it as
``make lint`` runs them (``lint-imports``, ``scripts/check_dag_imports.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE_LIBRARIES = {"polars", "numpy", "scipy", "pydantic"}
"""The dependencies models may import: computation and validation, no I/O. A dependency that is neither
here nor in the purity contract's forbidden modules fails ``test_every_dependency_is_pure_or_forbidden``."""


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _forbidden_to_models() -> set[str]:
    contracts = _pyproject()["tool"]["importlinter"]["contracts"]
    (purity,) = [c for c in contracts if c.get("source_modules") == ["attribution.models"]]
    return set(purity["forbidden_modules"])


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _modules_by_distribution() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module, distributions in packages_distributions().items():
        if module.isidentifier() and not module.startswith("_"):
            for distribution in distributions:
                found.setdefault(_normal(distribution), set()).add(module)
    return found


def _modules(requirement: str) -> set[str]:
    """The top-level modules a requirement installs; a distribution with none of its own (a meta package
    such as apache-airflow) stands for those of what it requires."""
    name = _normal(re.match(r"[A-Za-z0-9_.-]+", requirement).group())
    own = _modules_by_distribution().get(name)
    if own:
        return own
    needed = [r for r in requires(name) or [] if "extra ==" not in r]
    return set().union(*(_modules(r) for r in needed)) if needed else {name}


def test_every_dependency_is_pure_or_forbidden():
    project = _pyproject()["project"]
    requirements = [
        *project["dependencies"],
        *(r for rs in project["optional-dependencies"].values() for r in rs),
    ]
    classified = _forbidden_to_models() | PURE_LIBRARIES
    unclassified = {r: sorted(_modules(r) - classified) for r in requirements if _modules(r) - classified}
    assert not unclassified, (
        f"Classify each new dependency's modules {unclassified}: forbidden to models in pyproject's purity "
        "contract, or pure in PURE_LIBRARIES"
    )


def _package_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "attribution", tmp_path / "src" / "attribution")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run(
        [lint, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    "violation",
    [
        "from attribution.sample_data.options import DEFAULT_SEED",
        "from attribution.warehouse import tables",
        "import starlette",
    ],
)
def test_a_model_importing_io_or_another_layer_breaks_the_purity_contract(tmp_path, violation):
    root = _package_copy(tmp_path)
    linear = root / "src" / "attribution" / "models" / "linear.py"
    linear.write_text(linear.read_text() + f"\n{violation}\n")
    result = _lint_imports(root)
    assert result.returncode == 1
    assert re.search(r"Models are pure.*\n?.*BROKEN", result.stdout), result.stdout
    assert "attribution.models.linear" in result.stdout


def _check_dags(folder: Path) -> subprocess.CompletedProcess:
    script = ROOT / "scripts" / "check_dag_imports.py"
    return subprocess.run(
        [sys.executable, script, folder], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_dag_imports_the_package_only_inside_its_tasks():
    result = _check_dags(ROOT / "dags")
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    "violation",
    [
        "from attribution.pipeline import scheduled",
        "import attribution.errors",
        "try:\n    import attribution\nexcept ImportError:\n    pass",
    ],
)
def test_the_dag_importing_the_package_when_parsed_breaks_the_dag_contract(tmp_path, violation):
    source = (ROOT / "dags" / "attribution_pipeline.py").read_text()
    (tmp_path / "attribution_pipeline.py").write_text(
        source.replace("import pendulum\n", f"import pendulum\n{violation}\n", 1)
    )
    result = _check_dags(tmp_path)
    assert result.returncode == 1
    assert "imports attribution" in result.stdout and "DAG contract: BROKEN" in result.stdout

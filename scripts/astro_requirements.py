"""Print requirements.txt for the Astro image: the project's runtime dependencies, with the warehouse,
object-storage, Tableau and airflow extras, and everything they pull in, pinned as in requirements.lock (Airflow
itself comes with the Astro Runtime image). Run after the lock changes: ``.venv/bin/python scripts/astro_requirements.py
> requirements.txt``."""

import re
import tomllib
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXTRAS = ("s3", "redshift", "tableau", "airflow")
"""Optional dependencies a deployed DAG may need: reports to S3, Redshift warehouses, the Hyper extract and
its publishing to Tableau (``publish_tableau``), what Airflow's CLI needs beside Airflow."""
SHIPPED = "apache-airflow"
"""Distributions the image ships (Airflow, its core, SDK and providers): never listed."""

root = Path(__file__).resolve().parent.parent
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
lock_text = (root / "requirements.lock").read_text()
lock = re.findall(r"^([\w.\-]+)(?:\[[\w,\-]+\])?==(\S+)", lock_text, re.M)
pins = {canonicalize_name(name): version for name, version in lock}
todo = [Requirement(text) for text in project["dependencies"]]
todo += [Requirement(text) for extra in EXTRAS for text in project["optional-dependencies"][extra]]
extras: dict[str, set[str]] = {}
while todo:
    requirement = todo.pop()
    name, wanted = canonicalize_name(requirement.name), {"", *requirement.extras}
    if name.startswith(SHIPPED) or (name in extras and wanted <= extras[name] | {""}):
        continue
    extras.setdefault(name, set()).update(requirement.extras)
    for child in map(Requirement, distribution(name).requires or []):
        if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in wanted):
            todo.append(child)
print(
    "# Astro installs these into the Astro Runtime image, which already ships Airflow 3.3.2 and its providers."
)
print("# The project's runtime dependencies (pyproject.toml) with its s3, redshift, tableau and airflow extras")
print("# (less Airflow), and theirs, pinned and hashed as in requirements.lock (pip checks every hash); the")
print("# project itself is installed by the Dockerfile.")
print(
    "# Regenerate after the lock changes: .venv/bin/python scripts/astro_requirements.py > requirements.txt"
)
hashes = {
    canonicalize_name(name): re.findall(r"--hash=(sha256:[0-9a-f]{64})", block)
    for name, block in re.findall(r"(?ms)^([\w.\-]+)(?:\[[\w,\-]+\])?==\S+ \\\n(.*?)(?=^\S|\Z)", lock_text)
}
for name in sorted(extras):
    extra = "[" + ",".join(sorted(extras[name])) + "]" if extras[name] else ""
    print(f"{name}{extra}=={pins[name]}" + "".join(f" \\\n    --hash={digest}" for digest in hashes[name]))

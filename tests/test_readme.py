"""The README kept true by the code: its demo figures are what the demo prints, run at its seed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def demo_lines() -> list[str]:
    """The lines of the README's demo block (the ```text block under "## The demo")."""
    section = README.read_text().split("## The demo", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    assert block, "README.md has no demo block"
    return [line.strip() for line in block[1].splitlines() if line.strip()]


def test_the_readme_demo_figures_are_what_the_demo_prints(tmp_path):
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}  # the tables as a wide terminal shows them
    result = subprocess.run(
        [sys.executable, "-m", "attribution", "demo", "--db", str(tmp_path / "challenge.db"),
         "--out", str(tmp_path / "reports")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = {line.strip() for line in result.stdout.splitlines()}
    missing = [line for line in demo_lines() if line not in printed]
    assert not missing, "README lines the demo no longer prints:\n" + "\n".join(missing)

"""docs/architecture.md names every module of the package, so a new one cannot go unmapped."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "attribution"


def test_every_module_appears_in_the_architecture_doc():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    modules = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py"))
    missing = [module for module in modules if f"| `{module}` |" not in doc]
    assert not missing, f"docs/architecture.md's module table lacks {missing}"


def test_the_architecture_doc_names_no_module_that_is_gone():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = [line.split("`")[1] for line in doc.splitlines() if line.startswith("| `") and ".py` |" in line]
    assert rows and all((PACKAGE / row).is_file() for row in rows), [
        r for r in rows if not (PACKAGE / r).is_file()
    ]

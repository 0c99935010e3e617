"""Make docs/dashboard.png: the dashboard of a default demo run, as headless Chromium shows it.

Why a script: the README's screenshot must show the page the code makes today, so it is made, not edited.
It generates the default demo database (`attribution generate`'s defaults) in a temporary folder, runs the
pipeline over it with the default model, opens the run's dashboard.html in Debian's Chromium
(scripts/install-chromium.sh) with every network request refused, and screenshots the page's top.

    .venv/bin/python scripts/dashboard-screenshot.py            # writes docs/dashboard.png
    .venv/bin/python scripts/dashboard-screenshot.py --out /tmp/page.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from attribution import load_settings, run
from attribution.sample_data.generate import generate_database

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1280, "height": 2000}
"""The README's picture: the page's width on a laptop, tall enough for the headline, charts and totals."""


def demo_dashboard(folder: Path) -> Path:
    """The dashboard of a default demo run in ``folder``."""
    db = generate_database(folder / "demo.db").path
    run(load_settings(db=str(db), out=str(folder / "reports"), formats=("html",)))
    return folder / "reports" / "dashboard.html"


def screenshot(page_file: Path, out: Path) -> None:
    """Open the page offline and save its top as a PNG; refuse a page that logged an error."""
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
        )
        page = browser.new_page(viewport=VIEWPORT)
        page.on("console", lambda message: message.type == "error" and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.route("http*://**", lambda route: route.abort())
        page.goto(page_file.as_uri())
        page.wait_for_selector("#report[data-ready]", state="attached")
        page.screenshot(path=out)
        browser.close()
    if problems:
        raise SystemExit(f"Error: the dashboard logged errors: {'; '.join(problems)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png", help="the PNG to write")
    out = parser.parse_args().out
    if not CHROMIUM.exists():
        sys.exit(f"Error: {CHROMIUM} is missing: run scripts/install-chromium.sh")
    with tempfile.TemporaryDirectory() as folder:
        screenshot(demo_dashboard(Path(folder)), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

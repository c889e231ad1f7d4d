"""Screenshot of an HTML report in headless Chromium (the system's: apt-get install chromium), for the README.

    python scripts/screenshot_report.py results/cpu_serving.html results/cpu_serving_report.png
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main(page_path: str, png: str, width: int = 1400, height: int = 1000) -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("error: no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(Path(page_path).resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=60000)
        page.screenshot(path=png)
        browser.close()
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

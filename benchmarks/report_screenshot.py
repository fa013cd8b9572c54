"""Render a ``wmkit report`` page in headless Chromium and save a screenshot.

    python benchmarks/report_screenshot.py RUN/report.html shot.png [--width 1200 --height 3000]

Chromium comes from the system's packages (Debian: ``apt-get install chromium``). The page is
opened from disk (``file://``) with the network disabled, as a reader would open a mailed
report. Prints one JSON line: the screenshot's path and size, and how long Chromium took.
Exits 2 when no Chromium is installed. Then look at the PNG.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(page: Path, out: Path, width: int = 1200, height: int = 3000) -> dict:
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium found; on Debian: apt-get install chromium")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace to sandbox with
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            # No network: a self-contained page needs none.
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
            page.resolve().as_uri(),
        ]
        started = time.time()
        subprocess.run(command, check=True, capture_output=True, timeout=180)
    return {
        "screenshot": str(out),
        "bytes": out.stat().st_size,
        "seconds": round(time.time() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=3000)
    args = parser.parse_args()
    try:
        result = screenshot(args.page, args.out, args.width, args.height)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

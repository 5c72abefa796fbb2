"""Open a run's HTML report in headless Chromium and check the screenshot is not blank.

    python bench/report_screenshot.py [RUN_DIR] [--out shot.png] [--with-paper]

Without RUN_DIR it uses the hand-made run under tests/data/report/study (copied to a temporary
folder, so nothing is written into the repository). Needs Debian's `chromium` package
(`apt-get install -y chromium`). Prints one JSON line with what it measured; exits 1 when the
page renders blank, 2 when Chromium is missing.
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

import numpy as np
from PIL import Image

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "data" / "report" / "study"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html: Path, out: Path, *, width: int = 1280, height: int = 2400) -> float:
    """Render `html` to `out` (PNG); return the seconds Chromium took."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="harness-chromium-") as profile:
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out}",
            html.as_uri(),
        ]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        return time.perf_counter() - start


def blankness(png: Path) -> dict[str, float]:
    """How much of the picture differs from its background, and how many colours it uses."""
    image = Image.open(png).convert("RGB")
    pixels = np.asarray(image.resize((image.width // 4, image.height // 4)), dtype=int)
    flat = pixels.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    ink = int((np.abs(flat - background).sum(axis=1) > 60).sum())
    return {
        "width": image.width,
        "height": image.height,
        "ink_fraction": ink / len(flat),
        "colours": len(image.getcolors(maxcolors=1 << 20) or []),
    }


def check(run_dir: Path, out: Path, *, with_paper: bool = False) -> dict[str, object]:
    from harness.report.exports import write_report

    html = next(
        p for p in write_report(run_dir, ["html"], with_paper=with_paper) if p.suffix == ".html"
    )
    seconds = screenshot(html, out)
    stats = blankness(out)
    nonblank = stats["ink_fraction"] > 0.01 and stats["colours"] > 16
    return {
        "html": str(html),
        "html_bytes": html.stat().st_size,
        "screenshot": str(out),
        "chromium_s": round(seconds, 2),
        **stats,
        "nonblank": nonblank,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--with-paper", action="store_true")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print(json.dumps({"error": "chromium not found (apt-get install -y chromium)"}))
        return 2
    with tempfile.TemporaryDirectory(prefix="harness-report-") as tmp:
        run_dir = args.run_dir
        if run_dir is None:
            run_dir = Path(tmp) / "run"
            shutil.copytree(FIXTURE, run_dir)
        out = args.out or Path(tmp) / "report.png"
        result = check(run_dir, out, with_paper=args.with_paper)
        if args.out is None:
            result["screenshot"] = "(temporary)"
    print(json.dumps(result))
    return 0 if result["nonblank"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""The HTML report opened in headless Chromium renders something (bench/report_screenshot.py)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from _report_fixtures import STUDY_RUN

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "report_screenshot.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("report_screenshot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


screenshot = _load_script()


@pytest.mark.skipif(screenshot.find_chromium() is None, reason="chromium not installed")
def test_html_report_screenshot_is_not_blank(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(STUDY_RUN, run)
    result = screenshot.check(run, tmp_path / "shot.png", with_paper=True)
    assert result["nonblank"], result
    assert result["ink_fraction"] > 0.05 and result["colours"] > 100


def test_blank_page_is_detected(tmp_path):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 300), "white").save(blank)
    stats = screenshot.blankness(blank)
    assert stats["ink_fraction"] == 0.0 and stats["colours"] == 1

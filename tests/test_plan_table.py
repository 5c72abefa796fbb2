"""`harness plan` at 80 columns: every header and cell id whole, nothing cut with an ellipsis."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from harness.cli.app import app

MATRIX = [
    "--matrix",
    "sizes=7b,13b,33b",
    "--matrix",
    "methods=full,lora,qlora",
    "--matrix",
    "res=224,336",
]


def test_plan_keeps_headers_and_cell_ids_whole_at_80_columns(tmp_path):
    runner = CliRunner(env={"COLUMNS": "80"})
    out = ["--out", str(tmp_path / "run"), "--store", str(tmp_path / "store")]
    listed = runner.invoke(app, ["plan", "--json", *MATRIX, *out])
    assert listed.exit_code == 0, listed.output
    ids = [cell["id"] for cell in json.loads(listed.output)["cells"]]
    shown = runner.invoke(app, ["plan", *MATRIX, *out])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "…" not in shown.output and max(map(len, lines)) <= 80
    header = next(line for line in lines if line.lstrip().startswith("cell"))
    assert header.split() == [
        "cell",
        "hardware",
        "steps",
        "done",
        "GPU-h",
        "$",
        "judge",
        "$",
        "GB/GPU",
    ]
    assert all(any(line.lstrip().startswith(i + " ") for line in lines) for i in ids), shown.output

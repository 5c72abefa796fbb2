"""Fair comparisons: a plugin method takes the settings of the method it inherits from, and
`harness plan` says (one line per pair of methods) when methods are compared at settings that
differ by accident rather than by choice."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.config.fairness import comparison_warnings
from harness.config.matrix import expand, parse_matrix
from harness.config.registry import load_registry
from harness.errors import UserError
from harness.hookspecs import hookimpl
from harness.plugins import load_plugins, reset_plugins
from harness.report.entries import method_text


class _Adapter:
    """A LoRA-style method as far as planning goes (it never trains here)."""

    version = "1"

    def __init__(self, name: str, inherits: str | None = None, defaults: dict | None = None):
        self.name = name
        if inherits is not None:
            self.inherits = inherits
        self._defaults = defaults or {}

    def defaults(self, size):
        return dict(self._defaults)

    def load_model(self, model, train, stage1_dir): ...

    def prepare(self, bundle, train): ...

    def deepspeed_config(self, train, hardware, gpus):
        return {}

    def save(self, bundle, out_dir): ...

    def load(self, model, out_dir): ...


class _Methods:
    """dora inherits LoRA's settings, vera does not, head picks its own lr, loop inherits itself."""

    @hookimpl
    def register_backends(self, register):
        register(_Adapter("dora", inherits="lora"))
        register(_Adapter("vera"))
        register(_Adapter("head", defaults={"lr": 1e-4}))
        register(_Adapter("typo", inherits="lroa"))
        register(_Adapter("loop", inherits="loop"))


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(extra=[_Methods()])


def _cells(plugins, *axes: str, experiment: dict | None = None):
    registry = load_registry()
    exp = registry.experiment("default")
    if experiment is not None:
        exp = exp.model_copy(update=experiment)
    return expand(exp, registry, plugins, parse_matrix(list(axes))), exp, registry


def _by_method(cells):
    return {c.stage2.method: c.stage2 for c in cells}


def test_an_inheriting_method_trains_with_the_experiments_lora_settings(plugins):
    cells, *_ = _cells(plugins, "sizes=tiny-1m", "methods=lora,dora,vera")
    got = _by_method(cells)
    lora, dora, vera = got["lora"], got["dora"], got["vera"]
    assert (dora.lr, dora.lora_rank, dora.lora_alpha) == (2e-3, 16, 32)
    assert dora.model_dump(exclude={"method"}) == lora.model_dump(exclude={"method"})
    assert (vera.lr, vera.lora_rank) == (1e-4, None)  # no inherits: the global defaults
    (big,) = _cells(plugins, "sizes=33b", "methods=dora")[0]
    assert (big.stage2.lr, big.stage2.lora_rank, big.stage2.zero_stage) == (1e-4, 64, 3)


def test_a_methods_own_sub_table_wins_over_the_inherited_one(plugins):
    registry = load_registry()
    stage2 = dict(registry.experiment("default").stage2)
    stage2["tiny"] = {**stage2["tiny"], "dora": {"lr": 5e-4}}
    cells, exp, registry = _cells(
        plugins, "sizes=tiny-1m", "methods=lora,dora", experiment={"stage2": stage2}
    )
    dora = _by_method(cells)["dora"]
    assert (dora.lr, dora.lora_rank) == (5e-4, 16)
    # both learning rates are set by name: a choice, not an accident
    assert comparison_warnings(cells, exp.stage2, registry.methods, plugins) == []


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("typo", "backend 'typo': inherits = 'lroa': unknown backend 'lroa'.*did you mean 'lora'"),
        ("loop", "backend 'loop': inherits must name another method"),
    ],
)
def test_a_bad_inherits_is_one_line_naming_the_backend(plugins, method, message):
    with pytest.raises(UserError, match=message):
        _cells(plugins, "sizes=tiny-1m", f"methods={method}")


def test_one_warning_per_pair_of_methods_whatever_the_number_of_cells(plugins):
    cells, exp, registry = _cells(
        plugins, "sizes=tiny-1m,tiny-2m", "methods=lora,dora,vera,head", "seed=0,1"
    )
    lines = comparison_warnings(cells, exp.stage2, registry.methods, plugins)
    assert len(lines) == 4, lines  # vera and head agree with each other, lora with dora
    assert lines[0] == (
        "lora and vera differ in lr (0.002 vs 0.0001) in 8 cells: vera has no lr of its own; "
        'declare `inherits = "lora"` on the vera backend, or set lr for both '
        "in the experiment's stage2 table"
    )
    assert lines[1].startswith("lora and head differ in lr (0.002 vs 0.0001) in 8 cells: head")
    assert lines[2].startswith("dora and vera differ in lr (0.002 vs 0.0001) in 8 cells")
    assert 'declare `inherits = "lora"` on the vera backend' in lines[2]  # dora's own root
    assert lines[3].startswith("dora and head differ in lr (0.002 vs 0.0001) in 8 cells")
    assert not any("rank" in line for line in lines)  # vera has no rank: nothing to compare


def test_rank_and_steps_that_differ_by_accident_are_named_too():
    class _Narrow:
        @hookimpl
        def register_backends(self, register):
            register(_Adapter("narrow", defaults={"lora_rank": 8}))  # a default, not a choice

    registry = load_registry()
    stage2 = dict(registry.experiment("default").stage2)
    stage2["tiny"] = {**stage2["tiny"], "lora": {**stage2["tiny"]["lora"], "max_steps": 100}}
    plugins = load_plugins(extra=[_Narrow()])
    cells, exp, registry = _cells(
        plugins,
        "sizes=tiny-1m",
        "methods=lora,narrow",
        experiment={"stage2": stage2},
    )
    got = _by_method(cells)
    assert (got["narrow"].lora_rank, got["narrow"].max_steps) == (8, 400)
    (line,) = comparison_warnings(cells, exp.stage2, registry.methods, plugins)
    assert line.startswith(
        "lora and narrow differ in lr (0.002 vs 0.0001), rank (16 vs 8), steps (100 vs 400) "
        "in 2 cells: narrow has no lr or rank or steps of its own"
    ), line


def test_the_default_experiments_own_choices_give_no_warning(plugins):
    cells, exp, registry = _cells(plugins)  # full 1e-3 against LoRA's 2e-3, both by name
    assert {c.stage2.method for c in cells} == {"full", "lora", "qlora"}
    assert comparison_warnings(cells, exp.stage2, registry.methods, plugins) == []
    # base trains nothing (its own `train`): its learning rate means nothing
    cells, exp, registry = _cells(plugins, "sizes=tiny-1m", "methods=base,lora")
    assert comparison_warnings(cells, exp.stage2, registry.methods, plugins) == []


def test_harness_plan_prints_the_warning_once(plugins, tmp_path):
    from harness.cli.app import app

    reset_plugins(plugins)
    try:
        args = ["plan", "--matrix", "sizes=tiny-1m,tiny-2m methods=lora,vera"]
        result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    finally:
        reset_plugins()
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if "differ in" in line]
    assert len(warned) == 1 and warned[0].startswith("warning lora and vera differ in lr")
    assert not (tmp_path / "run").exists()  # plan writes nothing


def test_report_labels_name_the_rank_for_every_method_that_has_one():
    assert method_text({"method": "lora", "rank": 16}) == "lora-16"
    assert method_text({"method": "dora", "rank": 16}) == "dora-16"
    assert method_text({"method": "full", "rank": 16}) == "full"
    assert method_text({"method": "dora"}) == "dora"

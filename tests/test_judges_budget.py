"""Judge dollars that cannot under-count: estimates for every cell, reservations under
--budget-usd when judge steps run side by side, cache hits that are not spend, and judges with
no price that are unknown, never $0. Whole runs on fake training and a loopback judge server
that reports token usage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import _core_fakes as fakes
import _judges_run as jrun
import pytest
from _judges_fixtures import KEY, KEY_ENV
from _judges_server import FakeChatServer

from harness.cost.budget import measured_usd
from harness.cost.planner import estimate_plan
from harness.errors import UserError
from harness.plan.build import Options, build_plan
from harness.plan.plan_file import Plan
from harness.plugins import get_plugins, load_plugins, reset_plugins
from harness.report import render_text
from harness.results import RunResults
from harness.run.orchestrate import plan_rows, run_command

N = jrun.N_ITEMS
GPU_USD = (0.25 + 0.5) * 0.10  # the fake stage 1 and stage 2, GPU-hours at the CPU's price


def generous_tokenizer(text: str) -> int:
    """A server whose tokenizer counts ~30% more tokens than the harness estimates (3.5 chars)."""
    return math.ceil(len(text) / 2.7)


@pytest.fixture
def env(tmp_path, monkeypatch):
    reset_plugins(load_plugins(extra=[fakes, jrun]))
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    yield tmp_path
    reset_plugins(None)


def _opts(folder: Path, out: str = "run", **kw) -> Options:
    return Options(
        config=folder / "exp.toml", registry=folder / "registry.toml", out=folder / out, **kw
    )


def _paid(server: FakeChatServer, price: float) -> float:
    """What the server's answers cost, from the token usage it reported."""
    return sum(p + c for p, c in server.usage) * price / 1e6


def _cost(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())["cells"][0]["cost"]


def test_every_cell_gets_a_judge_estimate_from_its_prompts(tmp_path, monkeypatch):
    """The default experiment's tiny cells judged by gpt-4-0314: never $0.00."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    reset_plugins(None)
    one = estimate_plan(
        build_plan(Options(out=tmp_path / "a", judge="openai:gpt-4-0314"), get_plugins())
    )
    three = estimate_plan(
        build_plan(
            Options(out=tmp_path / "b", judge="openai:gpt-4-0314", matrix=["runs=3"]),
            get_plugins(),
        )
    )
    assert len(one.cells) == 6
    for cid, est in one.cells.items():
        assert est["judge_usd"] > 0.5  # 4 judged benchmarks, thousands of prompt tokens
        assert three.cells[cid]["judge_usd"] == pytest.approx(3 * est["judge_usd"])
    judged = sum(est["judge_usd"] for est in one.cells.values())
    assert one.total.judge_usd == pytest.approx(judged)


def test_parallel_judge_steps_reserve_their_estimate_before_they_start(env, capsys):
    """runs=3 on three parallel workers, the server counting more tokens than estimated: two
    steps fit the budget and start, the third is refused before it sends anything, and spend
    stays within one request batch of the budget (without reservations all three would run)."""
    price, budget = 50.0, GPU_USD + 0.285
    with FakeChatServer(reply=jrun.reply, count_tokens=generous_tokenizer) as server:
        jrun.write_config(env, server.base_url, price=price)
        opts = _opts(env, matrix=["runs=3"], executor="threads", max_parallel=3, budget_usd=budget)
        assert run_command(opts) == 1
        paid = _paid(server, price)
        requests = server.requests
    out = capsys.readouterr().out
    assert "not started" in out and "--budget-usd" in out
    assert requests == 2 * N  # two judge steps ran, the third sent nothing
    batch = max(_paid_per_request(price)) * 8  # one batch: 2 x max_concurrency requests
    assert GPU_USD + paid <= budget + batch
    plan = Plan.load(env / "run")
    assert measured_usd(plan) == pytest.approx(GPU_USD + paid, rel=1e-6)


def _paid_per_request(price: float) -> list[float]:
    content = f"grade it{jrun.PADDING}"
    prompt = generous_tokenizer(content) + generous_tokenizer("<q19> run 2: answer 99")
    return [(prompt + 1) * price / 1e6]


def test_cached_rerun_under_a_budget_is_not_spend(env):
    """Judgments already paid for cost nothing again: a budget below their price holds."""
    price = 50.0
    with FakeChatServer(reply=jrun.reply) as server:
        jrun.write_config(env, server.base_url, price=price)
        assert run_command(_opts(env)) == 0
        first = _paid(server, price)
        assert first > 0.02 and _cost(env / "run")["judge_usd"] == pytest.approx(first)
        server.reset_counts()
        # a new judge step (its options differ) asking the same questions, in a new run folder
        # on the same store, under a budget that covers the GPU but not the judging again
        jrun.write_config(env, server.base_url, price=price, jitter_seed=1)
        store = env / "run" / "store"
        opts = _opts(env, out="again", store=store, budget_usd=GPU_USD + first / 2)
        assert run_command(opts) == 0
        assert server.requests == 0
    cost = _cost(env / "again")
    assert cost["judge_usd"] == 0.0
    assert cost["judge_usd_saved"] == pytest.approx(first)
    report = render_text(RunResults.read(env / "again" / "results.json"), width=200)
    assert f"${first:,.2f} saved, not counted as spend" in report


def test_unpriced_judge_is_unknown_and_refused_under_a_budget(env):
    with FakeChatServer(reply=jrun.reply) as server:
        jrun.write_config(env, server.base_url, price=None)
        with pytest.raises(UserError) as err:
            run_command(_opts(env, budget_usd=100.0))
        assert server.requests == 0
        message = str(err.value)
        assert f"'{jrun.SNAPSHOT}' has no price" in message and "\n" not in message
        assert not (env / "run" / "results.json").exists()

        rows = plan_rows(build_plan(_opts(env), get_plugins()))
        estimate = rows["cells"][0]["estimate"]
        assert estimate["judge_usd"] is None and estimate["total_usd"] is None

        assert run_command(_opts(env)) == 0  # without a budget it runs, its cost unknown
        assert server.requests == N
    cost = _cost(env / "run")
    assert cost["judge_price_unknown"] is True
    report = render_text(RunResults.read(env / "run" / "results.json"), width=200)
    assert "unknown" in report and "has no price in the registry" in report

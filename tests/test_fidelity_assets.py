"""Protocol assets are part of what a result is: read from the merged registry, in step keys.

The 'official' rule file here is this test's own, pinned by sha256 in a base registry that
replaces the project's assets (HARNESS_REGISTRY), and served from a mirror folder the test makes.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest
from harness_plugins.benchmarks.llava_bench import CATEGORIES
from harness_plugins.benchmarks.mmbench import MMBench

from harness.config import assets
from harness.errors import UserError
from harness.plan.build import Options, build_plan
from harness.plan.plan_file import Plan
from harness.plan.step_inputs import eval_context
from harness.plugins import get_plugins
from harness.specs import sha256_of
from harness.support.content_versions import SYNTHETIC_VERSION
from harness.support.paths import project_root

CELL = "tiny-1m_lora"


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + "}"


def _toml(table: dict, prefix: tuple[str, ...] = ()) -> str:
    lines = [f"{json.dumps(k)} = {_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    if prefix and lines:
        lines.insert(0, "[" + ".".join(json.dumps(p) for p in prefix) + "]")
    for key, sub in table.items():
        if isinstance(sub, dict):
            lines.append(_toml(sub, (*prefix, key)))
    return "\n".join(lines)


@pytest.fixture
def official(tmp_path, monkeypatch) -> tuple[Path, str]:
    """(mirror folder, sha256 of its rule file); the base registry pins that sha256."""
    mirror = tmp_path / "mirror"
    rule = mirror / "llava" / "rule.json"
    rule.parent.mkdir(parents=True)
    prompts = {f"llava_bench_{c}": {"role": "Assistant", "prompt": f"Rate the {c}."}
               for c in CATEGORIES}  # fmt: skip
    rule.write_text(json.dumps(prompts))
    sha256 = hashlib.sha256(rule.read_bytes()).hexdigest()
    raw = tomllib.loads((project_root() / "registry.toml").read_text())
    raw["assets"] = {
        "llava-rule": {"url": "http://127.0.0.1:9/rule.json", "sha256": sha256,
                       "mirror": "llava/rule.json"}
    }  # fmt: skip
    text = _toml(raw)
    assert tomllib.loads(text) == raw
    (tmp_path / "base.toml").write_text(text)
    monkeypatch.setenv("HARNESS_REGISTRY", str(tmp_path / "base.toml"))
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARNESS_ASSETS_MIRROR", raising=False)
    return mirror, sha256


def _plan(tmp_path: Path, **flags) -> Plan:
    opts = Options(
        matrix=["sizes=tiny-1m", "methods=lora"],
        benchmarks="llava-bench,mmbench",
        out=tmp_path / "run",
        **flags,
    )
    return build_plan(opts, get_plugins())


def _llava_protocol(plan: Plan, work: Path) -> dict:
    cell = plan.cells[CELL]
    bench = get_plugins().get("benchmark", "llava-bench")
    ev = next(e for e in cell.evals if e.benchmark == "llava-bench")
    return bench.protocol(eval_context(plan, cell, bench, ev, work))


def test_a_registry_file_with_only_hardware_keeps_the_official_prompts(tmp_path, official):
    mirror, sha256 = official
    user = tmp_path / "user.toml"
    user.write_text("[hardware.lab-node]\ngpus_per_node = 4\nusd_per_node_hour = 9.5\n")
    assert assets.asset_specs(user)["llava-rule"].sha256 == sha256  # merged, not replaced
    plan = _plan(tmp_path, registry=user, assets_mirror=mirror)
    assert plan.assets == {"llava-rule": sha256}
    protocol = _llava_protocol(plan, tmp_path / "work")
    assert protocol["official"] is True and protocol["name"] == "llava-bench-in-the-wild"
    assert protocol["prompt_sha256"]["llava_bench_conv"] == (
        hashlib.sha256(b"Rate the conv.").hexdigest()
    )
    plan.save()  # steps running from the saved plan (workers, cluster jobs) use the same
    assert Plan.load(plan.run_dir).assets == {"llava-rule": sha256}


def test_step_keys_follow_the_assets_used_and_only_those_of_benchmarks_that_read_them(
    tmp_path, official
):
    mirror, sha256 = official
    fallback = _plan(tmp_path)  # nothing cached, no mirror: LLaVA-Bench's own prompts
    assert fallback.assets == {"llava-rule": None}
    assert _llava_protocol(fallback, tmp_path / "w1")["official"] is False
    assets.fetch(["llava-rule"], mirror=mirror)  # `harness assets fetch --mirror DIR`
    fetched = _plan(tmp_path)
    assert fetched.assets == {"llava-rule": sha256}
    before = {s.id: s.key for s in fallback.steps}
    after = {s.id: s.key for s in fetched.steps}
    assert before.keys() == after.keys()
    changed = {sid for sid in before if before[sid] != after[sid]}
    assert changed == {
        f"generate/{CELL}/llava-bench",
        f"judge/{CELL}/llava-bench/run0",
        f"score/{CELL}/llava-bench",
    }
    assets.asset_specs()["llava-rule"].cache_path.unlink()  # the file gone again: fallback keys
    assert {s.id: s.key for s in _plan(tmp_path).steps} == before
    # a benchmark that reads no asset keeps the key formula it had: a finished store is reused
    gen = fetched.step(f"generate/{CELL}/mmbench")
    stage2 = fetched.step(f"stage2/{CELL}")
    assert gen.key == sha256_of(
        {
            "spec": gen.spec,
            "deps": [stage2.key],
            "plugin": "mmbench",
            "version": MMBench.version,
            "generated": {"synthetic": SYNTHETIC_VERSION},
        }
    )


def test_a_step_uses_the_assets_its_plan_was_keyed_with(tmp_path, official):
    mirror, sha256 = official
    fallback = _plan(tmp_path)
    assets.fetch(["llava-rule"], mirror=mirror)
    # planned without the file: its steps keep the fallback even though the file is here now
    assert _llava_protocol(fallback, tmp_path / "w1")["official"] is False
    fetched = _plan(tmp_path)
    assert _llava_protocol(fetched, tmp_path / "w2")["official"] is True
    assets.asset_specs()["llava-rule"].cache_path.unlink()
    with pytest.raises(UserError, match="available when the run was planned but is not now"):
        _llava_protocol(fetched, tmp_path / "w3")

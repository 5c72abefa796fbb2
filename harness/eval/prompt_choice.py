"""Which prompt `harness eval` asks each benchmark with, the warning when it is not the
protocol's, and the record of the choice (docs/evaluating-a-checkpoint.md)."""

from __future__ import annotations

from typing import Any

from harness.errors import warn
from harness.plugins import Plugins
from harness.protocols import PromptTemplate


def modality(plugins: Plugins, benchmark: str) -> str:
    return plugins.benchmark(benchmark).modality


def choose_prompts(
    cells: dict[str, Any], plugins: Plugins, flag: str | None, default: str
) -> dict[str, str]:
    """Each generation benchmark's prompt: --prompt, else its `prompt` eval setting, else the
    checkpoint's default; set on the cells' evals (so it is in their step keys)."""
    chosen: dict[str, str] = {}
    for cid, cell in cells.items():
        evals = []
        for ev in cell.evals:
            bench = plugins.benchmark(ev.benchmark)
            if isinstance(bench, PromptTemplate) and bench.prompt_template:
                ev = ev.model_copy(update={"prompt": flag or ev.prompt or default})
                chosen[ev.benchmark] = ev.prompt
            evals.append(ev)
        cells[cid] = cell.model_copy(update={"evals": evals})
    return chosen


def warn_if_differ(name: str, tokenizer: Any, chosen: dict[str, str], plugins: Plugins) -> None:
    """One line when a benchmark's protocol prompt and the checkpoint's template render
    differently: its scores then depend on which one was used."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return
    from harness.eval.prompts import rendered_prompt
    from harness.protocols import GenerationRequest

    differ: dict[str, list[str]] = {}
    for bench, prompt in sorted(chosen.items()):
        plugin = plugins.benchmark(bench)
        protocol = plugin.prompt_template if isinstance(plugin, PromptTemplate) else "checkpoint"
        text = "What is shown?" if plugin.modality == "language" else "<image>\nWhat is shown?"
        own, theirs = (
            rendered_prompt(tokenizer, GenerationRequest("probe", text, template=t))
            for t in ("checkpoint", protocol)
        )
        if own != theirs:
            differ.setdefault(f"{protocol}->{prompt}", []).append(bench)
    for change, benches in differ.items():
        protocol, prompt = change.split("->")
        if prompt == "checkpoint":
            warn(
                f"{', '.join(benches)}: the protocol prompt is {protocol}, but {name} is "
                f"prompted with its own chat template, which renders differently "
                f"(--prompt {protocol} for the protocol's)"
            )
        else:
            warn(
                f"{', '.join(benches)}: {name} is prompted with {prompt}; its own chat template "
                "renders differently (--prompt checkpoint to use it)"
            )


def prompt_record(tokenizer: Any, chosen: dict[str, str]) -> dict[str, Any]:
    from harness.specs import sha256_of

    template = getattr(tokenizer, "chat_template", None) if tokenizer is not None else None
    return {
        "choice": chosen,
        "chat_template_sha256": sha256_of(template) if template else None,
    }

"""A tiny foundation LLM's MMLU: what it knows against what its answer letters show.

Builds (or reuses from the cache) a tiny size's foundation LLM, optionally with the lookup
recipe's knobs changed (`--lookup-rows N --init S --qk-init S`: the registry's
`tiny.lookup_rows`, `tiny.init_std` and `tiny.qk_init_std`; `--lookup-rows 0` turns the rows
off), and scores the synthetic MMLU test set (small scale, 200 questions) twice:

- letters: MMLU's protocol (5-shot, argmax log-likelihood of " A".." D" after "Answer:",
  scored by the harness's own `score_logliks`);
- knowledge: the same four options scored as answers to the bare question ("Q\\nAnswer: X",
  the form the pretraining text states the facts in), no letters involved.

Knowledge is what a perfect option-to-letter lookup would turn into letters; letters at chance
with knowledge above it means the lookup is missing, letters equal to knowledge means recall is
the limit. Chance is 25% for both.

    .venv/bin/python bench/mmlu_knowledge.py [--size tiny-1m] [--lookup-rows 0] [--qk-init 0.15]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the built-in plugins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny-1m")
    parser.add_argument("--lookup-rows", type=int, help="lookup rows a pretraining step")
    parser.add_argument("--init", type=float, help="the LLM initializer's std")
    parser.add_argument("--qk-init", type=float, help="the queries' and keys' init std")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.config.registry import load_registry
    from harness.data.synthetic.mmlu import LETTERS, TEST_SIZES, splits
    from harness.eval.loglik import score_logliks
    from harness.model.foundation import llm_dir, read_manifest, tokenizer_dir
    from harness.protocols import LoglikRequest
    from plugins.benchmarks.mmlu import build_context

    size = load_registry().sizes[args.size]
    tiny = dict(size.tiny or {})
    if args.lookup_rows is not None:
        tiny["lookup_rows"] = args.lookup_rows
    if args.init is not None:
        tiny["init_std"] = args.init
    if args.qk_init is not None:
        tiny["qk_init_std"] = args.qk_init
    size = size.model_copy(update={"tiny": tiny})
    started = time.perf_counter()
    folder = llm_dir(size, args.seed)
    vocab = int(tiny.get("vocab", 2048))
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(vocab, args.seed)))
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    requests, answers = [], []
    for subject, split in splits(args.seed).items():
        shots = [{"question": q, "choices": list(c), "answer": a} for q, c, a in split["dev"]]
        for n, (question, choices, answer) in enumerate(
            split["test"][: TEST_SIZES["small"][subject]]
        ):
            row = {"question": question, "choices": list(choices), "answer": answer}
            letter_choices = tuple(" " + x for x in LETTERS)
            options = tuple(" " + c for c in choices)
            requests += [
                LoglikRequest(
                    f"{subject}-{n}-letters", build_context(subject, shots, row), letter_choices
                ),
                LoglikRequest(f"{subject}-{n}-knowledge", question + "\nAnswer:", options),
            ]
            answers.append(answer)
    outputs = score_logliks(SimpleNamespace(model=model, tokenizer=tokenizer), requests, 32)
    picks = [max(range(4), key=outputs[r.id].logliks.__getitem__) for r in requests]
    letters = sum(p == a for p, a in zip(picks[0::2], answers, strict=True))
    knowledge = sum(p == a for p, a in zip(picks[1::2], answers, strict=True))
    total = len(answers)
    train = read_manifest(folder)["train"]
    print(json.dumps({"size": args.size, "tiny": tiny, "build": train}, sort_keys=True))
    print(
        f"{args.size}: letters {100 * letters / total:.1f}  knowledge {100 * knowledge / total:.1f}"
        f"  ({total} questions, chance 25.0; {time.perf_counter() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `hf` judge: a local instruction-tuned causal LM run in process with transformers.

For users with no API access. `snapshot` (or `options.model`) is a local folder or hub id;
the model loads on first use, prompts are rendered with the tokenizer's chat template (plain
"role: content" lines when it has none) and generated in batches, left-padded, grouped by
temperature. Greedy at temperature 0; sampling is seeded (`options.seed`) so runs repeat.
Not an official judge: its snapshot reads "hf:<name>@<fingerprint>".

Options: model, batch_size (8), device ("cuda" when available, else "cpu"), dtype
("float32", "bfloat16", "float16"), seed (0), max_new_tokens (cap on every request's max_tokens).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.hookspecs import hookimpl
from harness.protocols import JudgeRequest, JudgeResponse
from harness.support.hashing import sha256_parts

if TYPE_CHECKING:
    from harness.specs import JudgeSpec

log = logging.getLogger("harness.judges.hf")


class HFJudge:
    name = "hf"
    official = False
    runs_model = True  # on a cluster its steps get a GPU, never the driver's machine

    def __init__(self, spec: JudgeSpec):
        self.spec = spec
        opts = spec.options
        self.model_ref: str | None = opts.get("model") or spec.snapshot
        self.batch_size = max(1, int(opts.get("batch_size", 8)))
        self.seed = int(opts.get("seed", 0))
        self.max_new_tokens_cap = opts.get("max_new_tokens")
        self._model: Any = None
        self._tokenizer: Any = None

    def snapshot(self) -> str:
        ref = self.model_ref or "?"
        return f"hf:{Path(ref).name or ref}@{self._fingerprint(ref)}"

    def _fingerprint(self, ref: str) -> str:
        """12 hex of the folder's config and weight file names and sizes (or the hub revision)."""
        path = Path(ref).expanduser()
        if not path.is_dir():
            return str(self.spec.options.get("revision", "main"))
        parts: list[bytes | str] = []
        for file in sorted(path.iterdir()):
            if file.suffix in (".json", ".safetensors", ".bin", ".model"):
                parts.append(f"{file.name}:{file.stat().st_size}")
                if file.name == "config.json":
                    parts.append(file.read_bytes())
        return sha256_parts(parts)[:12]

    def check(self) -> None:
        """The model is named and its config loads (weights load on first use)."""
        if not self.model_ref:
            raise UserError("judge 'hf' needs judge.snapshot: a local model folder or a hub id")
        local = Path(self.model_ref).expanduser()
        if (local.is_absolute() or self.model_ref.startswith((".", "~"))) and not local.is_dir():
            raise UserError(f"judge 'hf': cannot load {self.model_ref!r}: no such model folder")
        from transformers import AutoConfig

        try:
            AutoConfig.from_pretrained(self.model_ref)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"judge 'hf': cannot load {self.model_ref!r}: {first}") from None

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.check()
        opts = self.spec.options
        device = opts.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = getattr(torch, str(opts.get("dtype", "float32")))
        tokenizer = AutoTokenizer.from_pretrained(self.model_ref)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.model_ref, dtype=dtype)
        self._model, self._tokenizer = model.to(device).eval(), tokenizer

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        tok = self._tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join(lines) + "\nassistant:"

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeResponse]:
        if not requests:
            return []
        self._load()
        answers: dict[int, JudgeResponse] = {}
        order = sorted(range(len(requests)), key=lambda i: (requests[i].temperature, i))
        for start in range(0, len(order), self.batch_size):
            batch = [i for i in order[start : start + self.batch_size]]
            groups: dict[float, list[int]] = {}
            for i in batch:
                groups.setdefault(requests[i].temperature, []).append(i)
            for temperature, idx in groups.items():
                chunk = [requests[i] for i in idx]
                try:
                    out = self._generate(chunk, temperature)
                except Exception as exc:  # a judge never raises for one batch
                    log.warning("hf judge batch failed: %s", exc)
                    err = f"hf generation failed: {type(exc).__name__}: {exc}"[:300]
                    out = [JudgeResponse(r.id, None, ok=False, error=err) for r in chunk]
                answers.update(zip(idx, out, strict=True))
        return [answers[i] for i in range(len(requests))]

    def _generate(self, chunk: list[JudgeRequest], temperature: float) -> list[JudgeResponse]:
        import torch

        tok, model = self._tokenizer, self._model
        prompts = [self.render(r.messages) for r in chunk]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        limits = [r.max_tokens for r in chunk]
        if self.max_new_tokens_cap:
            limits = [min(n, int(self.max_new_tokens_cap)) for n in limits]
        sample = temperature > 0
        torch.manual_seed(self.seed)
        with torch.no_grad():
            generated = model.generate(
                **enc,
                max_new_tokens=max(limits),
                do_sample=sample,
                temperature=temperature if sample else None,
                top_p=None,
                top_k=None,
                pad_token_id=tok.pad_token_id,
            )
        new = generated[:, enc["input_ids"].shape[1] :]
        responses = []
        for row, request, limit, mask in zip(
            new, chunk, limits, enc["attention_mask"], strict=True
        ):
            ids = row[:limit].tolist()
            if tok.eos_token_id in ids:
                ids = ids[: ids.index(tok.eos_token_id)]
            ids = [t for t in ids if t != tok.pad_token_id]
            responses.append(
                JudgeResponse(
                    id=request.id,
                    text=tok.decode(ids, skip_special_tokens=True),
                    prompt_tokens=int(mask.sum()),
                    completion_tokens=len(ids),
                )
            )
        return responses


@hookimpl
def register_judges(register) -> None:
    register(HFJudge)

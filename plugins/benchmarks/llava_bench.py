"""LLaVA-Bench (In-the-Wild): 60 questions on 24 images, GPT-4 pairwise review vs GPT-4 answers.

Follows LLaVA's eval_gpt_review_bench.py (request layout, rule.json prompt per category) and
summarize_gpt_review.py (relative score as a ratio of means), except that parse failures are
re-asked, then counted and excluded instead of being averaged in as (-1, -1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import UserError
from harness.hookspecs import hookimpl
from harness.protocols import (
    EvalContext,
    GenerationRequest,
    Item,
    JudgeRequest,
    JudgeResponse,
    ModelOutput,
)

from . import _common as common
from . import _llava_bench_data as data
from . import _pairwise as pairwise
from . import _sources as sources

if TYPE_CHECKING:
    from harness.results import BenchmarkResult
    from harness.specs import DataSource

CATEGORIES = ("conv", "detail", "complex")
MAX_NEW_TOKENS = 1024


class LlavaBench:
    name = "llava-bench"
    version = "1"
    # the conversation format of its protocol; the `prompt` eval setting overrides it
    prompt_template = "vicuna_v1"
    modality = "multimodal"
    judged = True
    assets = ("llava-rule",)

    # --- protocol --------------------------------------------------------------------------------

    def _rules(self, ctx: EvalContext) -> tuple[dict[str, dict[str, str]], bool]:
        path = ctx.assets.get("llava-rule")
        if path is None:
            return {f"llava_bench_{c}": pairwise.HARNESS_OWN_RULE for c in CATEGORIES}, False
        return pairwise.load_rules(path), True

    def protocol(self, ctx: EvalContext) -> dict[str, Any]:
        rules, official = self._rules(ctx)
        keys = [f"llava_bench_{c}" for c in CATEGORIES]
        return {
            "name": "llava-bench-in-the-wild" if official else "harness-own",
            "official": official,
            "source": "haotian-liu/LLaVA llava/eval/eval_gpt_review_bench.py",
            "system_prompt_sha256": common.sha256_text(pairwise.SYSTEM_PROMPT),
            "prompt_sha256": pairwise.rules_sha256(rules, keys),
            "judge_snapshot": ctx.judge_snapshot,
            "temperature": pairwise.TEMPERATURE,
            "max_tokens": pairwise.MAX_TOKENS,
            "parsing": pairwise.PARSING_RULE,
            "retry": f"re-ask up to {pairwise.MAX_REASKS} times",
            "aggregation": "mean(model) / mean(reference) x 100 per category; overall pools all",
            "generation": {
                "prompt": "<image>\\n{question}",
                "template": ctx.eval.prompt or self.prompt_template,
                "temperature": 0.0,
                "num_beams": ctx.eval.beam,
                "max_new_tokens": ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
            },
        }

    # --- data ------------------------------------------------------------------------------------

    def load(self, source: DataSource, ctx: EvalContext) -> list[Item]:
        items = []
        for row in self._rows(source):
            image = row["image"]
            if not isinstance(image, str):  # a hub copy's embedded image
                image = common.save_hub_image(image, ctx.work_dir, self.name, row["question_id"])
            items.append(
                self._item(
                    row["question_id"],
                    row["question"],
                    row["category"],
                    row["caption"],
                    row["reference"],
                    image,
                )
            )
        return items

    def check(self, source: DataSource, ctx: EvalContext) -> None:
        """Layout, fields, ids, sizes and categories, with images found but not opened; the
        synthetic set and remote hub ids are left to the steps."""
        if source.kind == "synthetic" or source.kind == "hub" and not sources.local_copy(source):
            return
        for row in self._rows(source, with_images=False):
            self._item(row["question_id"], row["question"], row["category"], "", "", None)

    def _rows(self, source: DataSource, with_images: bool = True) -> list[dict[str, Any]]:
        """Plain rows from the files, a hub id, or a local hub copy (images not read when
        `with_images` is False)."""
        if source.kind == "local":
            root = common.source_dir(source, self.name)
            if data.files_root(root) is not None or not sources.is_hub_copy(root):
                return data.local_rows(root)
            source = source.model_copy(update={"kind": "hub"})
        elif source.kind == "synthetic":
            return data.local_rows(common.source_dir(source, self.name))
        if not with_images and sources.local_copy(source):
            root = Path(str(source.path)).expanduser()
            rows = sources.hub_columns(root, source.split or "train", data.HUB_COLUMNS)
            return data.hub_rows(rows, str(root))
        return data.hub_rows(common.hub_rows(source, "train"), f"hub:{source.path}")

    def _item(self, qid, question, category, caption, reference, image) -> Item:
        if category not in CATEGORIES:
            raise UserError(f"llava-bench item {qid}: unknown category {category!r}")
        data = {
            "question": question,
            "category": category,
            "caption": caption,
            "reference": reference,
        }
        return Item(id=qid, data=data, image=image)

    # --- model and judge -------------------------------------------------------------------------

    def requests(self, items: Sequence[Item], ctx: EvalContext) -> list[GenerationRequest]:
        return [
            GenerationRequest(
                id=item.id,
                prompt="<image>\n" + item.data["question"],
                image=item.image,
                template=ctx.eval.prompt or self.prompt_template,
                max_new_tokens=ctx.eval.max_new_tokens or MAX_NEW_TOKENS,
                num_beams=ctx.eval.beam,
                temperature=0.0,
            )
            for item in items
        ]

    def judge_requests(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        run: int,
        ctx: EvalContext,
    ) -> list[JudgeRequest]:
        rules, _ = self._rules(ctx)
        requests = []
        for item in items:
            output = outputs.get(item.id)
            if output is None or output.text is None:
                continue
            d = item.data
            content = pairwise.review_content(
                d["question"],
                d["reference"],
                output.text,
                rules["llava_bench_" + d["category"]],
                context=d["caption"],
            )
            facts = {
                "question": d["question"],
                "reference": d["reference"],
                "answer": output.text,
                "context": d["caption"],
                "category": d["category"],
            }
            requests.append(pairwise.review_request(item.id, content, run, facts))
        return requests

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse) -> Any | None:
        return pairwise.parse_response(response)

    def retry_request(self, request: JudgeRequest, attempt: int) -> JudgeRequest | None:
        return pairwise.reask(request, attempt)

    # --- score -----------------------------------------------------------------------------------

    def score(
        self,
        items: Sequence[Item],
        outputs: dict[str, ModelOutput],
        judgments: list[dict[str, Any]],
        ctx: EvalContext,
    ) -> BenchmarkResult:
        from harness.results import BenchmarkResult

        categories = {item.id: item.data["category"] for item in items}
        per_run, failures, n_failed, means = pairwise.pairwise_runs(
            list(items), outputs, judgments, categories
        )
        metrics, std = common.combine_runs(per_run)
        return BenchmarkResult(
            benchmark=self.name,
            version=self.version,
            primary="overall",
            metrics=metrics,
            std=std,
            runs=per_run,
            n_items=len(items),
            n_failed=n_failed,
            failures=failures,
            protocol=self.protocol(ctx),
            judge=common.judge_record(ctx),
            extra={"mean_scores": means},
        )


@hookimpl
def register_benchmarks(register) -> None:
    register(LlavaBench())

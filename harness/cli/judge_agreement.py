"""`harness judge-agreement RUN_DIR --judges a,b`: what a judge change does to a run's numbers.

Re-judges every judge request recorded in RUN_DIR/samples/<cell>/<benchmark>.jsonl with both
judges (through the store's judge cache, so judgments already paid for cost nothing), parses
each answer with the benchmark's own rule, and reports per benchmark: items both judged,
Pearson and Spearman correlation and mean absolute difference of the scores (pairwise: the
model's score; MM-Vet: correctness), exact agreement, and Cohen's kappa for choice letters.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import typer


def register(app: typer.Typer) -> None:
    @app.command("judge-agreement")
    def judge_agreement(
        run_dir: Annotated[Path, typer.Argument(help="a run directory (has samples/)")],
        judges: Annotated[str, typer.Option("--judges", help="A,B as NAME[:SNAPSHOT]")],
        base_url: Annotated[str | None, typer.Option(help="for API judges")] = None,
        api_key_env: Annotated[str, typer.Option(help="variable holding the key")] = (
            "OPENAI_API_KEY"
        ),
        cache: Annotated[Path | None, typer.Option(help="judge cache (RUN_DIR/store/...)")] = None,
        out: Annotated[Path | None, typer.Option("--out", help="write the report as JSON")] = None,
    ) -> None:
        """Re-judge a run's samples with two judges and report their agreement per benchmark."""
        from harness.errors import UserError
        from harness.judging.cache import JudgeCache
        from harness.plugins import get_plugins
        from harness.specs import JudgeSpec

        names = [j.strip() for j in judges.split(",") if j.strip()]
        if len(names) != 2:
            raise UserError(f"--judges takes two judges as A,B; got {judges!r}")
        groups = load_requests(Path(run_dir))
        plugins = get_plugins()
        specs = []
        for name in names:
            plugin, _, snapshot = name.partition(":")
            specs.append(
                JudgeSpec(
                    name=plugin,
                    snapshot=snapshot or None,
                    base_url=base_url,
                    api_key_env=api_key_env,
                )
            )
        built = [plugins.judge(s.name)(s) for s in specs]
        for judge in built:
            judge.check()
        judge_cache = JudgeCache(cache or Path(run_dir) / "store" / "judge_cache.sqlite")
        report = compare(groups, built, plugins.benchmark, judge_cache)
        typer.echo(render(report, names))
        if out:
            Path(out).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


def load_requests(run_dir: Path) -> dict[tuple[str, str, int], list[Any]]:
    """(benchmark, cell, run) -> the JudgeRequests recorded in the run's samples files."""
    from harness.errors import UserError
    from harness.protocols import JudgeRequest

    files = sorted(
        path
        for path in (run_dir / "samples").glob("*/*.jsonl")
        if not path.name.endswith(".items.jsonl")  # per-question scores: no judge requests
    )
    if not files:
        raise UserError(f"{run_dir}: no samples/<cell>/<benchmark>.jsonl files to re-judge")
    groups: dict[tuple[str, str, int], list[JudgeRequest]] = defaultdict(list)
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            try:
                records = json.loads(line).get("judge") or []
            except (json.JSONDecodeError, AttributeError):
                raise UserError(f"{path}:{number}: not a JSON object") from None
            for record in records:
                if not record or "request" not in record:
                    continue
                body = dict(record["request"])
                body["messages"] = tuple(body["messages"])
                groups[(path.stem, path.parent.name, body.get("run", 0))].append(
                    JudgeRequest(**body)
                )
    return dict(groups)


def compare(groups, judges, benchmark_of, cache) -> dict[str, Any]:
    """Judge each group with both judges; agreement statistics per benchmark."""
    from harness.judging.client import judge_all

    values: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    failed: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (bench_name, _cell, _run), requests in sorted(groups.items()):
        bench = benchmark_of(bench_name)
        outcomes = [judge_all(bench, judge, requests, cache) for judge in judges]
        for rid in outcomes[0].judgments:
            a, b = (scalar(o.judgments.get(rid)) for o in outcomes)
            failed[bench_name][0] += a is None
            failed[bench_name][1] += b is None
            if a is not None and b is not None:
                values[bench_name].append((a, b))
    judge_info = [
        {"name": j.name, "snapshot": j.snapshot(), "official": j.official} for j in judges
    ]
    report: dict[str, Any] = {"judges": judge_info, "benchmarks": {}}
    for bench_name in sorted(set(values) | set(failed)):
        stats = agreement(values.get(bench_name, []))
        stats["failed"] = failed[bench_name]
        report["benchmarks"][bench_name] = stats
    return report


def scalar(parsed: Any) -> float | str | None:
    """A comparable value: numbers as is, a pairwise (reference, model) pair as the model's."""
    if isinstance(parsed, bool) or parsed is None:
        return None
    if isinstance(parsed, int | float):
        return float(parsed)
    if isinstance(parsed, list | tuple) and len(parsed) == 2:
        return float(parsed[1])
    if isinstance(parsed, str):
        return parsed
    return None


def agreement(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    stats: dict[str, Any] = {"n": len(pairs)}
    if not pairs:
        return stats
    stats["exact_agreement"] = sum(a == b for a, b in pairs) / len(pairs)
    if all(isinstance(a, float) and isinstance(b, float) for a, b in pairs):
        xs, ys = [a for a, _ in pairs], [b for _, b in pairs]
        stats["mean"] = [sum(xs) / len(xs), sum(ys) / len(ys)]
        stats["mean_abs_diff"] = sum(abs(a - b) for a, b in pairs) / len(pairs)
        stats["pearson"] = pearson(xs, ys)
        stats["spearman"] = pearson(ranks(xs), ranks(ys))
    else:
        stats["cohen_kappa"] = cohen_kappa([str(a) for a, _ in pairs], [str(b) for _, b in pairs])
    return stats


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """Pearson's r; None when either side is constant (r is undefined)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def ranks(xs: list[float]) -> list[float]:
    """Average ranks (ties share the mean rank), as Spearman's rho needs."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    labels = set(a) | set(b)
    expected = sum((a.count(label) / n) * (b.count(label) / n) for label in labels)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def render(report: dict[str, Any], names: list[str]) -> str:
    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    head = f"{'benchmark':<14}{'n':>6}{'agree':>8}{'pearson':>9}{'spearman':>9}{'|diff|':>8}"
    lines = [f"judge A = {names[0]}, judge B = {names[1]}", head + f"{'kappa':>8}  failed A/B"]
    for bench, s in report["benchmarks"].items():
        lines.append(
            f"{bench:<14}{s['n']:>6}{fmt(s.get('exact_agreement')):>8}"
            f"{fmt(s.get('pearson')):>9}{fmt(s.get('spearman')):>9}"
            f"{fmt(s.get('mean_abs_diff')):>8}{fmt(s.get('cohen_kappa')):>8}"
            f"  {s['failed'][0]}/{s['failed'][1]}"
        )
    return "\n".join(lines)

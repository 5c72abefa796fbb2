"""The `harness` command. Heavy libraries (torch, transformers) load only inside commands."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from harness import __version__
from harness.errors import PluginError, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode=None,
    help="Train-then-evaluate matrices for LLaVA-style models, with cost beside every score.",
)

# Commands that live in their own modules; each has `register(app)`.
COMMAND_MODULES = (
    "data",
    "merge",
    "assets",
    "judge_agreement",
    "report",
    "new",
    "calibrate",
    "verify",
    "foundations",
)

Matrix = Annotated[
    list[str] | None,
    typer.Option(
        "--matrix", "-m", help="AXIS=V1,V2 (sizes, methods, res, mix, rank, lr, beam, judge, ...)"
    ),
]
Config = Annotated[Path | None, typer.Option("--config", help="experiment TOML file")]
Experiment = Annotated[
    str | None, typer.Option("--experiment", "-e", help="an experiment of the registry")
]
Benchmarks = Annotated[str | None, typer.Option("--benchmarks", "-b", help="a,b,...")]
Judge = Annotated[str | None, typer.Option("--judge", help="NAME[:SNAPSHOT]")]
Data = Annotated[
    list[str] | None, typer.Option("--data", help="BENCHMARK=PATH|hub:ID|synthetic (repeatable)")
]
TrainData = Annotated[
    list[str] | None,
    typer.Option(
        "--train-data",
        help="captions|instructions|language=PATH|hub:ID|synthetic: training data (repeatable)",
    ),
]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="run folder (default runs/NAME)")]
Store = Annotated[Path | None, typer.Option("--store", help="step store shared between runs")]
Executor = Annotated[str | None, typer.Option("--executor", help="local | slurm | ...")]
Registry = Annotated[
    Path | None, typer.Option("--registry", help="registry TOML merged over the project's")
]
Mirror = Annotated[
    Path | None, typer.Option("--assets-mirror", help="offline folder of protocol assets")
]
Budget = Annotated[float | None, typer.Option("--budget-usd", help="refuse or stop above this")]
Parallel = Annotated[int | None, typer.Option("--max-parallel", help="steps at once")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _options(**kw):
    from harness.plan.build import Options

    kw["matrix"] = kw.get("matrix") or []
    kw["data"] = kw.get("data") or []
    kw["train_data"] = kw.get("train_data") or []
    return Options(**kw)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"harness {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="show the version and exit"
        ),
    ] = False,
) -> None:
    """harness: train LLaVA-style models, evaluate them, and report scores beside cost."""


@app.command()
def run(
    matrix: Matrix = None,
    config: Config = None,
    experiment: Experiment = None,
    benchmarks: Benchmarks = None,
    judge: Judge = None,
    data: Data = None,
    train_data: TrainData = None,
    out: Out = None,
    store: Store = None,
    executor: Executor = None,
    registry: Registry = None,
    assets_mirror: Mirror = None,
    budget_usd: Budget = None,
    max_parallel: Parallel = None,
) -> None:
    """Train and evaluate every cell of the matrix (reusing finished steps), then report."""
    opts = dict(locals())
    from harness.run.orchestrate import run_command

    raise typer.Exit(run_command(_options(**opts)))


@app.command()
def plan(
    matrix: Matrix = None,
    config: Config = None,
    experiment: Experiment = None,
    benchmarks: Benchmarks = None,
    judge: Judge = None,
    data: Data = None,
    train_data: TrainData = None,
    out: Out = None,
    store: Store = None,
    executor: Executor = None,
    registry: Registry = None,
    assets_mirror: Mirror = None,
    budget_usd: Budget = None,
    max_parallel: Parallel = None,
    as_json: AsJson = False,
) -> None:
    """Show cells, steps (done or to run) and the estimated cost, without running anything."""
    opts = dict(locals())
    opts.pop("as_json")
    from harness.run.orchestrate import plan_command

    raise typer.Exit(plan_command(_options(**opts), as_json=as_json))


@app.command("eval")
def eval_(
    model: Annotated[str, typer.Option("--model", help="checkpoint folder or hub id")],
    matrix: Matrix = None,
    config: Config = None,
    experiment: Experiment = None,
    benchmarks: Benchmarks = None,
    judge: Judge = None,
    data: Data = None,
    out: Out = None,
    store: Store = None,
    executor: Executor = None,
    registry: Registry = None,
    assets_mirror: Mirror = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt",
            help="checkpoint (its own chat template) | vicuna_v1 | llava_v1; default: "
            "checkpoint when the model carries a chat template, else vicuna_v1",
        ),
    ] = None,
) -> None:
    """Evaluate an existing checkpoint (ours, llava-hf, or a plain causal LM) without training."""
    opts = dict(locals())
    model_ref = opts.pop("model")
    prompt = opts.pop("prompt")
    from harness.run.orchestrate import eval_command

    raise typer.Exit(eval_command(_options(**opts), model_ref, prompt))


@app.command()
def plugins(as_json: AsJson = False) -> None:
    """List every plugin: its package, version and what it registers."""
    from harness.plugins import KINDS, get_plugins

    found = get_plugins()
    rows = []
    for kind in KINDS:
        for name in found.names(kind):
            origin = found.origin(kind, name)
            rows.append(
                {
                    "kind": kind,
                    "name": name,
                    "plugin": origin.plugin,
                    "package": origin.package,
                    "version": origin.version,
                }
            )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "registered": rows,
                    "refused": found.refused,
                    "clashes": list(found.clashes.values()),
                    "blocked": found.blocked,
                },
                indent=2,
            )
        )
        return
    header = ("kind", "name", "package", "version", "entry point")
    table = [header] + [
        (r["kind"], r["name"], r["package"], r["version"], r["plugin"]) for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:  # plain columns: rich costs more start-up than the listing itself
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    for message in found.refused:
        typer.echo(f"refused: {message}")
    for message in found.clashes.values():
        typer.echo(f"clash: {message}")
    if found.blocked:
        typer.echo(f"blocked by HARNESS_BLOCK_PLUGINS: {', '.join(found.blocked)}")


def _register_command_modules() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"harness.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"harness.cli.{name}":
                continue
            raise
        module.register(app)


_register_command_modules()


def expand_matrix_args(argv: list[str]) -> list[str]:
    """`--matrix a=1 b=2` -> `--matrix a=1 --matrix b=2` (an option takes one value in click)."""
    out: list[str] = []
    in_matrix = False
    for arg in argv:
        if arg in ("--matrix", "-m"):
            in_matrix = True
            out.append(arg)
            continue
        if (
            in_matrix
            and out[-1] not in ("--matrix", "-m")
            and "=" in arg
            and not arg.startswith("-")
        ):
            out.append("--matrix")
        elif arg.startswith("-") or "=" not in arg:
            in_matrix = False
        out.append(arg)
    return out


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        code = app(
            args=expand_matrix_args(sys.argv[1:]), prog_name="harness", standalone_mode=False
        )
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (UserError, PluginError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # usage errors (click's, possibly vendored by typer)
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            print(f"error: {exc.format_message()}{hint}", file=sys.stderr)
            sys.exit(2)
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        if os.environ.get("HARNESS_DEBUG"):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    if isinstance(code, int) and code:  # a command's typer.Exit(code) comes back as a value
        sys.exit(code)

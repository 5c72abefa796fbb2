"""The module the `harness` entry point names: its hook registers the benchmarks."""

from harness.hookspecs import hookimpl

from harness_example_benchmark.vqa import ExampleVQA


@hookimpl
def register_benchmarks(register) -> None:
    register(ExampleVQA(judged=False))
    register(ExampleVQA(judged=True))

"""Judge throughput: 200 requests to a loopback chat-completions server with 200 ms latency.

Runs them sequentially (max_concurrency=1) and concurrently (default 16), then once more from
the judge cache, and prints both times, the speed-up and the cached pass's request count. The
last line is `RATIO judge_throughput <sequential / concurrent>`.

    python bench/judge_throughput.py [--requests 200] [--latency 0.2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _judges_server import FakeChatServer  # noqa: E402
from harness_plugins.judges.openai_judge import OpenAIJudge  # noqa: E402

from harness.judging.cache import JudgeCache  # noqa: E402
from harness.judging.client import judge_all  # noqa: E402
from harness.protocols import JudgeRequest, JudgeResponse  # noqa: E402
from harness.specs import JudgeSpec  # noqa: E402


class TwoScores:
    """LLaVA's two-number parsing rule, enough to exercise judge_all."""

    name = "bench"

    def parse_judgment(self, request: JudgeRequest, response: JudgeResponse):
        parts = (response.text or "").split("\n")[0].split()
        return tuple(map(float, parts)) if len(parts) == 2 else None

    def retry_request(self, request: JudgeRequest, attempt: int):
        return None


def make_requests(n: int) -> list[JudgeRequest]:
    return [
        JudgeRequest(
            id=f"q{i}",
            kind="pairwise",
            messages=({"role": "user", "content": f"[Question] item {i} ... rate both answers"},),
            temperature=0.2,
            max_tokens=64,
        )
        for i in range(n)
    ]


def timed_pass(server, concurrency: int, requests, cache) -> tuple[float, int, dict]:
    spec = JudgeSpec(
        name="openai",
        snapshot="gpt-4-0314",
        base_url=server.base_url,
        max_concurrency=concurrency,
        options={"api_key_required": False},
    )
    server.reset_counts()
    start = time.perf_counter()
    outcome = judge_all(TwoScores(), OpenAIJudge(spec), requests, cache)
    elapsed = time.perf_counter() - start
    assert all(v == (8.0, 7.0) for v in outcome.judgments.values()), outcome.failures
    return elapsed, server.requests, outcome.usage.to_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    requests = make_requests(args.requests)
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeChatServer(latency_s=args.latency, reply=lambda m: "8 7\nboth fine") as server,
    ):
        seq_s, seq_n, _ = timed_pass(server, 1, requests, None)
        cache = JudgeCache(Path(tmp) / "judge_cache.sqlite")
        con_s, con_n, _ = timed_pass(server, args.concurrency, requests, cache)
        cached_s, cached_n, usage = timed_pass(server, args.concurrency, requests, cache)
    print(f"requests            {args.requests} at {args.latency * 1000:.0f} ms server latency")
    print(f"sequential          {seq_s:7.2f} s  ({seq_n} requests, max_concurrency=1)")
    limit = f"max_concurrency={args.concurrency}"
    print(f"concurrent          {con_s:7.2f} s  ({con_n} requests, {limit})")
    print(
        f"cached second pass  {cached_s:7.2f} s  ({cached_n} requests, {usage['cache_hits']} hits)"
    )
    print(f"cpu cores           {os.cpu_count()}")
    print(f"RATIO judge_throughput {seq_s / con_s:.2f}")


if __name__ == "__main__":
    main()

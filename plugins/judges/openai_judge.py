"""The `openai` judge: GPT-4-class grading through the official `openai` client.

Any OpenAI-compatible server works through `base_url` (vLLM, llama.cpp server, Ollama); Azure
through `options.api_version` (then `base_url` is the Azure endpoint and the snapshot the
deployment name). The key is read in check(), when judging starts, from `api_key_file` or the
variable `api_key_env`; servers that need none take `options.api_key_required = false`.

Requests run on at most `max_concurrency` threads, started no faster than
`requests_per_minute`. 429s, 5xx, 408/409, timeouts, dropped connections and malformed bodies
are retried `max_retries` times with exponential backoff and full jitter, honouring Retry-After
(which pauses every worker). After the last retry the item comes back as a failed response
(ok=False) with the reason; judge() never raises for one item. A 401 or 403 is not about one
item: the first one stops the judging (no further request is sent) and judge() raises
JudgeUnusable with one line naming the status and the key to check (never the key itself).

Options (JudgeSpec.options): backoff_base_s (1.0), backoff_max_s (60), max_retry_after_s (300),
jitter_seed, max_tokens_param ("max_tokens" or "max_completion_tokens"), request_params (extra
body fields such as seed), api_version (Azure), api_key_required (True).
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from harness.hookspecs import hookimpl
from harness.judging.client import JudgeUnusable
from harness.protocols import JudgeRequest, JudgeResponse

from ._secrets import Secret, read_api_key
from ._throttle import RateLimiter, backoff_delay, retry_after_seconds

if TYPE_CHECKING:
    from harness.specs import JudgeSpec

log = logging.getLogger("harness.judges.openai")

DEFAULT_SNAPSHOT = "gpt-4-0613"
OFFICIAL_HOSTS = ("api.openai.com", ".openai.azure.com")
MALFORMED = (ValueError, TypeError, AttributeError, KeyError, IndexError)


class RetryableError(Exception):
    """One failed attempt worth retrying; `wait_s` is the server's Retry-After, if it sent one."""

    def __init__(self, kind: str, detail: str, wait_s: float | None = None):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail, self.wait_s = kind, detail, wait_s


class FatalError(Exception):
    """One failed attempt that retrying cannot fix (400, 404, 422, ...)."""


class AuthError(FatalError):
    """401 or 403: no request will succeed with this key."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status


class OpenAIJudge:
    name = "openai"

    def __init__(self, spec: JudgeSpec):
        self.spec = spec
        self._snapshot = spec.snapshot or DEFAULT_SNAPSHOT
        host = (urlparse(spec.base_url).hostname or "") if spec.base_url else "api.openai.com"
        self.official = self._snapshot.startswith("gpt-4") and host.endswith(OFFICIAL_HOSTS)
        opts = spec.options
        self.backoff_base_s = float(opts.get("backoff_base_s", 1.0))
        self.backoff_max_s = float(opts.get("backoff_max_s", 60.0))
        self.max_retry_after_s = float(opts.get("max_retry_after_s", 300.0))
        self.max_tokens_param = str(opts.get("max_tokens_param", "max_tokens"))
        self.request_params: dict[str, Any] = dict(opts.get("request_params", {}))
        self._rng = random.Random(opts.get("jitter_seed"))
        self._limiter = RateLimiter(spec.requests_per_minute)
        self._secret: Secret | None = None
        self._client: Any = None
        self._unusable: str | None = None  # why judging stopped (a 401/403), once it has

    def __repr__(self) -> str:
        return f"OpenAIJudge(snapshot={self._snapshot!r}, base_url={self.spec.base_url!r})"

    def snapshot(self) -> str:
        return self._snapshot

    def check(self) -> None:
        """Read the key and build the client; a missing key is one UserError line."""
        if self._client is not None:
            return
        if self.spec.options.get("api_key_required", True) is False:
            self._secret = Secret("EMPTY")  # what keyless servers (vLLM, Ollama) expect
        else:
            self._secret = read_api_key(self.spec, self.name)
        import openai

        common = dict(api_key=self._secret.reveal(), timeout=self.spec.timeout_s, max_retries=0)
        if "api_version" in self.spec.options:
            self._client = openai.AzureOpenAI(
                azure_endpoint=self.spec.base_url,
                api_version=str(self.spec.options["api_version"]),
                **common,
            )
        else:
            self._client = openai.OpenAI(base_url=self.spec.base_url, **common)

    def judge(self, requests: list[JudgeRequest]) -> list[JudgeResponse]:
        self.check()
        if not requests:
            return []
        workers = max(1, min(self.spec.max_concurrency, len(requests)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="judge") as pool:
            responses = list(pool.map(self._judge_one, requests))
        if self._unusable is not None:
            raise JudgeUnusable(self._unusable, answered=[r for r in responses if r.ok])
        return responses

    # --- one item, with retries --------------------------------------------------------------

    def _judge_one(self, request: JudgeRequest) -> JudgeResponse:
        attempts = self.spec.max_retries + 1
        last: RetryableError | None = None
        for attempt in range(attempts):
            self._limiter.acquire()
            if self._unusable is not None:  # another request met a 401/403: send nothing more
                return self._failed(request, "not sent: the judge refused the key")
            try:
                return self._call(request)
            except RetryableError as exc:
                last = exc
                if attempt + 1 == attempts:
                    break
                wait = self._wait_before_retry(exc, attempt)
                log.debug(
                    "judge %s: %s; retry %d in %.2fs", request.id, exc.kind, attempt + 1, wait
                )
                time.sleep(wait)
            except AuthError as exc:
                if self._unusable is None:
                    self._unusable = self._auth_message(exc)
                return self._failed(request, f"{exc} (not retried)")
            except FatalError as exc:
                return self._failed(request, f"{exc} (not retried)")
            except Exception as exc:  # a judge never raises for one item
                return self._failed(request, f"unexpected {type(exc).__name__}: {exc}")
        assert last is not None
        return self._failed(request, f"{last.kind} after {attempts} attempt(s): {last.detail}")

    def _auth_message(self, exc: AuthError) -> str:
        """One line: the status, where the judge was asked, and which key to check."""
        spec = self.spec
        if spec.options.get("api_key_required", True) is False:
            where = "the server wants a key: set options.api_key_required = true and a key"
        elif spec.api_key_file:
            where = f"check the API key in the file {spec.api_key_file}"
        else:
            where = f"check the API key in the environment variable {spec.api_key_env}"
        if exc.status == 403:
            where += f" and its access to the model {self._snapshot!r}"
        server = spec.base_url or "api.openai.com"
        name = "Unauthorized" if exc.status == 401 else "Forbidden"
        message = (
            f"judge {self.name!r} ({self._snapshot} at {server}) answered HTTP {exc.status} "
            f"{name}: {where}; judging stopped"
        )
        return self._secret.scrub(message) if self._secret else message

    def _wait_before_retry(self, exc: RetryableError, attempt: int) -> float:
        if exc.wait_s is not None:
            wait = min(exc.wait_s, self.max_retry_after_s)
            self._limiter.pause(wait)
            return wait
        return backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)

    def _failed(self, request: JudgeRequest, error: str) -> JudgeResponse:
        error = self._secret.scrub(error) if self._secret else error
        log.warning("judge %s failed: %s", request.id, error)
        return JudgeResponse(id=request.id, text=None, ok=False, error=error)

    def _call(self, request: JudgeRequest) -> JudgeResponse:
        import openai

        params = {
            "model": self._snapshot,
            "messages": [dict(m) for m in request.messages],
            "temperature": request.temperature,
            self.max_tokens_param: request.max_tokens,
            **self.request_params,
        }
        try:
            completion = self._client.chat.completions.create(**params)
            text = completion.choices[0].message.content
            usage = completion.usage
            if not isinstance(text, str):
                raise TypeError("the response has no message content")
        except openai.APIStatusError as exc:
            raise _status_error(exc) from None
        except openai.APITimeoutError:
            raise RetryableError("timeout", f"no answer within {self.spec.timeout_s}s") from None
        except openai.APIConnectionError as exc:
            raise RetryableError("connection", str(exc)[:200]) from None
        except (openai.APIResponseValidationError, *MALFORMED) as exc:
            raise RetryableError(
                "malformed_response", f"{type(exc).__name__}: {exc}"[:200]
            ) from None
        return JudgeResponse(
            id=request.id,
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )


def _status_error(exc: Any) -> Exception:
    status = exc.status_code
    detail = f"HTTP {status}: {str(getattr(exc, 'message', '') or exc)[:200]}"
    if status == 429:
        return RetryableError("rate_limited", detail, retry_after_seconds(exc.response.headers))
    if status >= 500 or status in (408, 409):
        kind = "server_error" if status >= 500 else "timeout"
        return RetryableError(kind, detail, retry_after_seconds(exc.response.headers))
    if status in (401, 403):
        return AuthError(status, f"client_error: {detail}")
    return FatalError(f"client_error: {detail}")


@hookimpl
def register_judges(register) -> None:
    register(OpenAIJudge)

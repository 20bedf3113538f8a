"""The pure pieces behind kaic's reliability promises (docs/reliability.md): bounded loading, retries and
the outbox, redaction, token and transport checks, cron ranges, resume re-running the exit handler."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from kaic.errors import ConfigError, ServiceUnavailable
from kaic.executor.runner import previous_nodes
from kaic.redact import RedactingStream, secret_values
from kaic.safeload import Limits, load_json, load_yaml, load_yaml_all
from kaic.stores.resilient import Outbox, RetryingStore, retrying

pytestmark = pytest.mark.unit


# --- bounded loading --------------------------------------------------------------------------------


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "metadata:\n  annotations:\n" + "".join(f"    {ln}\n" for ln in lines)


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"wf\.yaml: refused: expands to more than 200000 nodes"):
        load_yaml(_bomb(9), "wf.yaml")  # 10**9 leaves once expanded
    assert time.perf_counter() - started < 5  # not a timing claim: a hang would not return at all


def test_shared_aliases_within_the_limit_load() -> None:
    doc = load_yaml(_bomb(3), "wf.yaml")
    assert len(doc["metadata"]["annotations"]["a2"]) == 10


def test_depth_limit_for_yaml_and_json() -> None:
    with pytest.raises(ConfigError, match="deeper than 64"):
        load_yaml("[" * 100 + "]" * 100, "deep.yaml")
    with pytest.raises(ConfigError, match="deeper than 64"):
        load_json("[" * 100 + "]" * 100, "deep.json")
    assert load_yaml("[" * 10 + "]" * 10, "ok.yaml") == [[[[[[[[[[]]]]]]]]]]


def test_size_binary_and_type_limits() -> None:
    with pytest.raises(ConfigError, match="larger than 10 bytes"):
        load_yaml("a: 1234567890", "x.yaml", Limits(max_bytes=10))
    with pytest.raises(ConfigError, match="binary content"):
        load_yaml_all("a: \x00", "x.yaml")
    with pytest.raises(ConfigError, match=r"status\.json: expected a JSON object, got array"):
        load_json("[1]", "status.json", expect=dict)
    with pytest.raises(ConfigError, match=r"x.json: invalid JSON: line 1, column 2"):
        load_json("{x", "x.json")


# --- retries and the outbox -------------------------------------------------------------------------


class FlakyStore:
    """A file-like store whose first `failures` calls raise ConnectionRefusedError (an outage)."""

    base_uri = "s3://b/p"

    def __init__(self, failures: int) -> None:
        self.failures, self.objects = failures, {}  # type: ignore[var-annotated]

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError("connection refused")

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{key}"

    def put_bytes(self, key: str, data: bytes) -> None:
        self._maybe_fail()
        self.objects[key] = data

    def get_bytes(self, key: str) -> bytes:
        self._maybe_fail()
        return self.objects[key]  # type: ignore[no-any-return]


def test_retrying_bridges_a_short_outage_and_gives_up_after_its_budget() -> None:
    sleeps: list[float] = []
    store = FlakyStore(failures=3)
    retrying("put", lambda: store.put_bytes("k", b"v"), budget_s=60, sleep=sleeps.append)
    assert store.objects == {"k": b"v"}
    assert sleeps == [0.5, 1.0, 2.0]
    down = FlakyStore(failures=10**6)
    with pytest.raises(ServiceUnavailable, match=r"put: unavailable after \d+ attempt"):
        retrying("put", lambda: down.put_bytes("k", b"v"), budget_s=0.05, sleep=lambda s: time.sleep(0.01))


def test_an_answer_is_not_retried() -> None:
    calls = []

    def missing() -> None:
        calls.append(1)
        raise FileNotFoundError("no such key")

    with pytest.raises(FileNotFoundError):
        retrying("get", missing, budget_s=60, sleep=lambda s: None)
    assert calls == [1]


def test_rows_wait_in_the_outbox_until_the_store_is_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIC_STORE_RETRY_S", "0")
    flaky = FlakyStore(failures=10**6)
    store = RetryingStore("s3://b/p", "--object-store", lambda: flaky)  # type: ignore[arg-type,return-value]
    outbox = Outbox(tmp_path, "run-1")
    outbox.put("runs/run-1/rows/train.parquet", b"rows")
    with pytest.raises(ServiceUnavailable):
        outbox.flush(store)
    assert outbox.pending() == ["runs/run-1/rows/train.parquet"]  # kept on local disk
    flaky.failures = 0  # the store is back
    assert outbox.flush(store) == ["s3://b/p/runs/run-1/rows/train.parquet"]
    assert flaky.objects == {"runs/run-1/rows/train.parquet": b"rows"}
    assert outbox.pending() == []


# --- secrets ----------------------------------------------------------------------------------------


def test_every_line_of_a_secret_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIC_ARGO_TOKEN", "first-line-secret\nsecond-line-secret")
    monkeypatch.setenv("KAIC_S3_SECRET_KEY", "s3-secret-key-value")
    sink = io.StringIO()
    out = RedactingStream(sink, secret_values())
    out.write("token first-line-secret and second-line-secret, key s3-secret-key-value\n")
    out.write("partial s3-secret-")
    out.write("key-value")
    out.flush()
    assert sink.getvalue() == "token *** and ***, key ***\npartial ***"


def test_a_token_with_a_newline_is_refused_without_printing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from kaic.argo.connection import argo_token

    monkeypatch.setenv("KAIC_ARGO_TOKEN", "abc\ninjected-secret")
    with pytest.raises(ConfigError) as exc:
        argo_token()
    assert "injected-secret" not in str(exc.value)
    assert "KAIC_ARGO_TOKEN" in str(exc.value)


@pytest.mark.parametrize(("url", "insecure", "refused"), [
    ("http://argo.example.com:2746/", False, True),
    ("http://argo.example.com:2746/", True, False),
    ("https://argo.example.com:2746/", False, False),
    ("http://127.0.0.1:2746/", False, False),
    ("http://localhost:2746/", False, False),
    ("http://[::1]:2746/", False, False),
])
def test_a_token_goes_over_plain_http_only_to_loopback(url: str, insecure: bool, refused: bool) -> None:
    from kaic.argo.connection import check_transport

    if refused:
        with pytest.raises(ConfigError, match="--insecure-http"):
            check_transport(url, "tok", insecure)
    else:
        check_transport(url, "tok", insecure)
    check_transport(url, None, False)  # no token, nothing to leak


# --- cron, resume ----------------------------------------------------------------------------------


@pytest.mark.parametrize("expr", ["0 2 * * *", "*/15 0-23 1,15 JAN-DEC mon-fri", "@daily", "@every 6h",
                                  "59 23 31 12 6", "0 0 ? * SUN"])
def test_valid_cron_expressions(expr: str) -> None:
    from pipelines.config import check_cron

    assert check_cron(expr) == expr


def test_resume_runs_the_exit_handler_again() -> None:
    def node(name: str, phase: str = "Succeeded") -> dict[str, str]:
        return {"id": name, "name": name, "displayName": name, "type": "Pod", "phase": phase}

    status = {"status": {"nodes": {n["id"]: n for n in (
        node("wf"), node("wf.provision"), node("wf.train", "Failed"), node("wf.onExit"), node("wf.onExit(0)"),
        node("wf.onExitNotReally"))}}}
    kept = previous_nodes(status, "wf", "status.json")
    assert set(kept) == {"wf", "wf.provision", "wf.train", "wf.onExitNotReally"}
    with pytest.raises(ConfigError, match=r"status\.nodes is a list"):
        previous_nodes({"status": {"nodes": [1]}}, "wf", "status.json")

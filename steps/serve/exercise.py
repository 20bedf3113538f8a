"""What the serve step does to a running model server, wherever it runs: readiness, prediction parity,
the load test over V2 and the Prometheus metrics check. Returns check outcomes."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from kaic.results import Outcome, Status
from steps.serve import loadgen, prom, v2
from steps.serve.export import ExportedModel
from steps.serve.parity import compare


@dataclass(frozen=True)
class Endpoint:
    """Where to send requests: an address, and the Host header a gateway may route on."""

    host: str
    port: int
    host_header: str | None = None
    remote: bool = False  # False: loopback only (the local server)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @staticmethod
    def from_url(url: str, remote: bool = True, host_header: str | None = None) -> Endpoint:
        u = urlsplit(url if "://" in url else f"http://{url}")
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"endpoint {url!r}: expected http://host[:port]")
        return Endpoint(u.hostname, u.port or 80, host_header, remote)

    def client(self, timeout_s: float) -> httpx.Client:
        headers = {"Host": self.host_header} if self.host_header else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s, trust_env=False)


@dataclass(frozen=True)
class LoadPlan:
    concurrency: tuple[int, ...]
    warmup_s: float
    duration_s: float
    request_timeout_s: float
    max_requests: int
    batch: int  # holdout rows per load request
    parity_batch: int
    parity_rtol: float
    parity_atol: float


def wait_ready(
    ep: Endpoint,
    model: str,
    deadline_s: float,
    died: Callable[[], str | None] = lambda: None,
    interval_s: float = 0.1,
) -> float:
    """Seconds until server and model both report ready; TimeoutError (or RuntimeError if it died)."""
    start = time.monotonic()
    with ep.client(timeout_s=2.0) as c:
        while True:
            reason = died()
            if reason:
                raise RuntimeError(reason)
            try:
                if (
                    c.get(v2.SERVER_READY_PATH).status_code == 200
                    and c.get(v2.ready_path(model)).status_code == 200
                ):
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            if time.monotonic() - start > deadline_s:
                raise TimeoutError(f"{ep.base_url} not ready within {deadline_s:g}s")
            time.sleep(interval_s)


def scrape(ep: Endpoint, model: str) -> prom.HistogramSample | None:
    with ep.client(timeout_s=10.0) as c:
        r = c.get(v2.METRICS_PATH)
        r.raise_for_status()
        return prom.histogram(r.text, prom.PREDICT_HISTOGRAM, {"model_name": model})


def check_parity(ep: Endpoint, model: ExportedModel, plan: LoadPlan) -> tuple[Outcome, int]:
    """(outcome, inference requests sent)."""
    h = model.holdout
    if h is None or len(h) == 0:
        return Outcome.skipped("serve.prediction_parity", "train exported no holdout predictions"), 0
    served: list[list[float]] = []
    sent = 0
    with ep.client(timeout_s=plan.request_timeout_s) as c:
        for i in range(0, len(h), plan.parity_batch):
            body = v2.infer_body(h.features[i : i + plan.parity_batch], model.width)
            r = c.post(v2.infer_path(model.name), content=body, headers={"Content-Type": "application/json"})
            sent += 1
            if r.status_code != 200:
                return Outcome(
                    "serve.prediction_parity",
                    Status.FAILED,
                    f"infer request for rows {i}..{i + plan.parity_batch} answered HTTP "
                    f"{r.status_code}: {r.text[:200]}",
                ), sent
            served.extend(v2.parse_logits(r.content))
    report = compare(h, served, plan.parity_rtol, plan.parity_atol)
    return Outcome.verdict(
        "serve.prediction_parity",
        report.ok,
        report.message(plan.parity_rtol, plan.parity_atol),
        metric="serve_parity_mismatches",
        value=float(len(report.mismatched_rows)),
        unit="rows",
    ), sent


def load_requests(ep: Endpoint, model: ExportedModel, batch: int, limit: int = 256) -> list[bytes]:
    """Precomputed request bytes: holdout rows (or zeros when there is no holdout) in `batch`-row bodies."""
    rows: Sequence[Sequence[float]] = model.holdout.features if model.holdout else [[0.0] * model.width]
    cyc = itertools.cycle(rows)
    n = max(1, min(limit, len(rows) // batch or 1))
    path = v2.infer_path(model.name)
    return [
        loadgen.http_request(
            ep.host,
            ep.port,
            path,
            v2.infer_body([next(cyc) for _ in range(batch)], model.width),
            ep.host_header,
        )
        for _ in range(n)
    ]


def run_load(
    ep: Endpoint, model: ExportedModel, plan: LoadPlan, log: Callable[[str], None]
) -> list[loadgen.LevelStats]:
    reqs = load_requests(ep, model, plan.batch)
    levels = []
    for c in plan.concurrency:
        s = loadgen.drive(
            ep.host,
            ep.port,
            reqs,
            c,
            plan.duration_s,
            warmup_s=plan.warmup_s,
            max_requests=plan.max_requests,
            timeout_s=plan.request_timeout_s,
            allow_remote=ep.remote,
        )
        log(
            f"c={c}: {s.ok} ok, {s.errors} errors, {s.rps:.0f} req/s, p50 {s.p50_ms:.2f} ms, "
            f"p95 {s.p95_ms:.2f} ms, p99 {s.p99_ms:.2f} ms"
        )
        levels.append(s)
    return levels


def load_outcomes(levels: Sequence[loadgen.LevelStats]) -> list[Outcome]:
    out: list[Outcome] = []
    for s in levels:
        v = f"c{s.concurrency}"
        note = f"{s.ok} requests in {s.elapsed_s:.2f}s at concurrency {s.concurrency}"
        if s.ok == 0:
            out.append(
                Outcome(
                    "serve.latency",
                    Status.ERROR,
                    f"no successful request at concurrency {s.concurrency} (statuses {s.statuses})",
                )
            )
        else:
            out += [
                Outcome.measured("serve.latency", f"serve_{p}_ms@{v}", getattr(s, f"{p}_ms"), "ms", note)
                for p in ("p50", "p95", "p99")
            ]
        out.append(Outcome.measured("serve.throughput", f"serve_rps@{v}", s.rps, "req/s", note))
    attempted = sum(s.attempted for s in levels)
    errors = sum(s.errors for s in levels)
    per_level = ", ".join(f"c{s.concurrency}: {s.errors}/{s.attempted}" for s in levels)
    rate = errors / attempted if attempted else 1.0
    out.append(
        Outcome.measured(
            "serve.error_rate",
            "serve_error_rate",
            rate,
            "ratio",
            f"{errors} errors in {attempted} requests ({per_level})",
        )
    )
    return out


def exercise(
    ep: Endpoint, metrics_ep: Endpoint, model: ExportedModel, plan: LoadPlan, log: Callable[[str], None]
) -> list[Outcome]:
    """Parity, load and metrics against a ready server. `metrics_ep` is the server itself (not a gateway)."""
    out: list[Outcome] = []
    try:
        before = scrape(metrics_ep, model.name)
    except httpx.HTTPError as exc:
        before = None
        log(f"metrics scrape before load failed: {exc}")
    parity, sent = check_parity(ep, model, plan)
    out.append(parity)
    levels = run_load(ep, model, plan, log)
    out += load_outcomes(levels)
    sent += sum(s.total_ok for s in levels)
    try:
        after = scrape(metrics_ep, model.name)
        verdict = prom.judge_growth(before, after, sent)
        out.append(
            Outcome.verdict(
                "serve.service_metrics",
                verdict.ok,
                f"{metrics_ep.base_url}{v2.METRICS_PATH}: {verdict.message}",
                metric="serve_metrics_requests_counted",
                value=verdict.grew_by,
                unit="requests",
            )
        )
    except httpx.HTTPError as exc:
        out.append(
            Outcome("serve.service_metrics", Status.FAILED, f"{metrics_ep.base_url}{v2.METRICS_PATH}: {exc}")
        )
    return out


LOAD_CHECKS = (
    "serve.prediction_parity",
    "serve.latency",
    "serve.throughput",
    "serve.error_rate",
    "serve.service_metrics",
    "serve.metrics_collected",
)


def not_run(reason: str) -> list[Outcome]:
    """Skipped rows for the checks that need a ready server."""
    return [Outcome.skipped(c, reason) for c in LOAD_CHECKS]

"""The serve step against a real KServe ModelServer process on loopback, serving a tiny TorchScript model
trained here on sklearn's digits: readiness, V2 inference, parity, the load driver, /metrics, and the
whole step (which must leave no process behind)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from kaic import localproc
from kaic.results import Outcome, RunContext, Status
from steps.serve import exercise, loadgen, v2
from steps.serve.export import ExportedModel, fetch_model
from steps.serve.local import HOST, child_environ, free_port, server_command
from steps.serve.tiny_model import MODEL_FILES, write_tiny_model

pytestmark = pytest.mark.integration

PLAN = exercise.LoadPlan(
    concurrency=(1, 4),
    warmup_s=0.2,
    duration_s=1.0,
    request_timeout_s=10,
    max_requests=100_000,
    batch=1,
    parity_batch=64,
    parity_rtol=1e-3,
    parity_atol=1e-3,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def model(model_dir: Path) -> ExportedModel:
    from steps.serve.parity import read_holdout

    return ExportedModel(model_dir, "digits", 64, read_holdout(str(model_dir / "holdout_predictions.parquet")))


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[exercise.Endpoint]:
    """A real ModelServer process, registered like the serve step registers it; stopped in finally."""
    home, run_id, port = tmp_path_factory.mktemp("home"), f"test-{secrets.token_hex(3)}", free_port()
    proc = localproc.start(
        run_id,
        server_command(model_dir, port, 1, 1),
        name="model-server",
        port=port,
        log=home / "server.log",
        environ=child_environ(),
        home=home,
    )
    ep = exercise.Endpoint(HOST, port)
    try:
        exercise.wait_ready(
            ep, "digits", 90, lambda: None if proc.poll() is None else (home / "server.log").read_text()[-2000:]
        )
        yield ep
    finally:
        localproc.stop_all(run_id, grace_s=5, home=home)
        assert localproc.alive(run_id, home) == {}


def test_server_and_model_report_ready(server: exercise.Endpoint) -> None:
    with server.client(5) as c:
        assert c.get(v2.SERVER_READY_PATH).json()["ready"] is True
        assert c.get(v2.ready_path("digits")).json() == {"name": "digits", "ready": True}
        assert c.get(v2.ready_path("nope")).status_code == 404


def test_v2_inference_returns_logits_for_a_batch(server: exercise.Endpoint, model: ExportedModel) -> None:
    assert model.holdout is not None
    body = v2.infer_body(model.holdout.features[:5], 64)
    with server.client(10) as c:
        r = c.post(v2.infer_path("digits"), content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        out = r.json()["outputs"][0]
        assert (out["name"], out["shape"], out["datatype"]) == ("logits", [5, 10], "FP32")
        bad = c.post(
            v2.infer_path("digits"), content=v2.infer_body([[0.0] * 3], 3), headers={"Content-Type": "application/json"}
        )
        assert bad.status_code == 400
        assert "expected [batch, 64]" in bad.text


def test_served_predictions_equal_training_side(server: exercise.Endpoint, model: ExportedModel) -> None:
    outcome, sent = exercise.check_parity(server, model, PLAN)
    assert outcome.status is Status.PASSED, outcome.message
    assert outcome.value == 0
    assert sent == -(-len(model.holdout or []) // PLAN.parity_batch)
    assert f"{len(model.holdout or [])}/{len(model.holdout or [])} served predictions" in outcome.message


def test_load_at_two_levels_and_metrics_count_every_request(server: exercise.Endpoint, model: ExportedModel) -> None:
    before = exercise.scrape(server, "digits")
    levels = exercise.run_load(server, model, PLAN, lambda _: None)
    after = exercise.scrape(server, "digits")
    assert [s.concurrency for s in levels] == [1, 4]
    for s in levels:
        assert s.ok > 0
        assert s.errors == 0
        assert s.statuses == {200: s.ok}
        assert 0 < s.p50_ms <= s.p95_ms <= s.p99_ms
        assert s.rps > 0
        assert s.total_ok >= s.ok  # warm-up requests are served too, just not measured
    sent = sum(s.total_ok for s in levels)
    verdict = exercise.prom.judge_growth(before, after, sent)
    assert verdict.ok, verdict.message
    assert after is not None
    assert before is not None
    assert after.count - before.count == sent


def test_errors_are_counted_not_hidden(server: exercise.Endpoint) -> None:
    bad = [loadgen.http_request(server.host, server.port, v2.infer_path("digits"), v2.infer_body([[0.0] * 3], 3))]
    s = loadgen.drive(server.host, server.port, bad, 2, 0.3)
    assert s.ok == 0
    assert s.errors > 0
    assert set(s.statuses) == {400}
    assert s.error_rate == 1.0
    closed = loadgen.drive(server.host, free_port(), bad, 1, 0.2)  # nothing listens: refused, counted
    assert closed.ok == 0
    assert closed.errors > 0
    assert set(closed.statuses) == {0}


def _ctx(home: Path, run_id: str) -> object:
    from kaic.profiles import load_profile
    from kaic.stepkit import StepContext
    from kaic.stores.objects import open_store

    store = open_store(f"file://{home / 'objects'}", source="test")
    return StepContext(
        RunContext(run_id, "0.1.0", datetime.now(UTC), "local"), load_profile("local"), store, home, "serve"
    )


def test_the_whole_step_locally_leaves_nothing_running(model_dir: Path, kaic_home: Path) -> None:
    import steps.serve as serve

    run_id = f"kaic-test-{secrets.token_hex(3)}"
    ctx = _ctx(kaic_home, run_id)
    for f in MODEL_FILES:
        ctx.store.put_file(f"runs/{run_id}/model/{f}", model_dir / f)  # type: ignore[attr-defined]
    config = serve.Config(concurrency=(1, 2), warmup_s=0.2, duration_s=0.8, ready_timeout_s=90)
    rows: list[Outcome] = serve.run(config, ctx)  # type: ignore[arg-type]
    by = {(o.check_id, o.metric): o for o in rows}
    for check in ("serve.ready", "serve.prediction_parity", "serve.error_rate", "serve.service_metrics"):
        o = next(o for o in rows if o.check_id == check)
        assert o.status is Status.PASSED, f"{check}: {o.message}"
    assert by[("serve.ready", "serve_time_to_ready_s")].value > 0  # type: ignore[operator]
    assert by[("serve.error_rate", "serve_error_rate")].value == 0.0
    assert {("serve.throughput", "serve_rps@c1"), ("serve.latency", "serve_p99_ms@c2")} <= set(by)
    gateway = next(o for o in rows if o.check_id == "serve.gateway_route")
    assert gateway.status is Status.SKIPPED
    assert "no cluster" in gateway.message
    assert localproc.alive(run_id, kaic_home) == {}
    assert localproc.records(run_id, kaic_home) == []
    log = (kaic_home / "runs" / run_id / "steps" / "serve" / "model_server.log").read_text()
    assert "Uvicorn running on http://127.0.0.1:" in log  # loopback only, not 0.0.0.0


def test_no_model_skips_every_serve_row_with_the_reason(kaic_home: Path) -> None:
    import steps.serve as serve

    ctx = _ctx(kaic_home, "kaic-test-nomodel")
    rows = serve.run(serve.Config(), ctx)  # type: ignore[arg-type]
    assert {o.status for o in rows} == {Status.SKIPPED}
    assert "runs/kaic-test-nomodel/model/model.pt" in rows[0].message
    assert {o.check_id for o in rows} >= {"serve.ready", "serve.prediction_parity", "serve.error_rate"}


def test_fetch_model_downloads_the_export(model_dir: Path, kaic_home: Path, tmp_path: Path) -> None:
    ctx = _ctx(kaic_home, "kaic-test-fetch")
    for f in MODEL_FILES:
        ctx.store.put_file(f"runs/kaic-test-fetch/model/{f}", model_dir / f)  # type: ignore[attr-defined]
    m = fetch_model(ctx.store, "runs/kaic-test-fetch/model", tmp_path / "dl")  # type: ignore[attr-defined]
    assert (m.name, m.width) == ("digits", 64)
    assert m.holdout is not None
    assert len(m.holdout) == 360
    assert json.loads((tmp_path / "dl" / "model.json").read_text())["input_scale"] == 16.0


def test_unreachable_server_is_not_ready(kaic_home: Path) -> None:
    with pytest.raises(TimeoutError):
        exercise.wait_ready(exercise.Endpoint(HOST, free_port()), "digits", 0.3)
    with pytest.raises(RuntimeError, match="exited"):
        exercise.wait_ready(exercise.Endpoint(HOST, free_port()), "digits", 5, lambda: "exited with 1")
    assert httpx  # the client library the step uses for small requests


class _ServingCluster:
    """The cluster seam as the serve step sees it: applied objects recorded; the InferenceService turns
    Ready after a few polls with its address at the real local ModelServer; the Gateway's address is that
    server too (standing in for the gateway's data plane); HTTPRoutes are Accepted once applied."""

    def __init__(self, ep: exercise.Endpoint, gateway_api: bool, polls_to_ready: int = 3) -> None:
        self.ep, self.gateway_api, self.polls = ep, gateway_api, polls_to_ready
        self.applied: list[dict[str, object]] = []

    def api_resources(self) -> list[object]:
        from kaic.cluster import ApiResource

        out = [ApiResource("serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices", True)]
        if self.gateway_api:
            out += [
                ApiResource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", True),
                ApiResource("gateway.networking.k8s.io", "v1", "Gateway", "gateways", True),
            ]
        return out

    def apply(self, obj: dict[str, object]) -> dict[str, object]:
        self.applied.append(obj)
        return obj

    def get(self, gv: str, plural: str, name: str, namespace: str | None = None) -> dict[str, object] | None:
        if plural == "gateways":
            return {
                "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": self.ep.port}]},
                "status": {"addresses": [{"value": self.ep.host}]},
            }
        obj = next((o for o in self.applied if o["metadata"]["name"] == name), None)  # type: ignore[index]
        if obj is None:
            return None
        ok = [{"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "True"}]
        if plural == "httproutes":
            return {**obj, "status": {"parents": [{"conditions": ok}]}}
        self.polls -= 1
        ready = "True" if self.polls <= 0 else "False"
        return {
            **obj,
            "status": {"conditions": [{"type": "Ready", "status": ready}], "address": {"url": self.ep.base_url}},
        }


@pytest.mark.parametrize("gateway_api", [True, False])
def test_cluster_path_through_the_seam(server: exercise.Endpoint, model: ExportedModel, gateway_api: bool) -> None:
    from kaic.cluster import RUN_ID_LABEL
    from kaic.profiles import load_profile
    from steps.serve.cluster import ClusterServing, serve_on_cluster

    profile = load_profile("eks").model_copy(
        update={"serving": load_profile("eks").serving.model_copy(update={"gateway": "gateways/inference"})}
    )
    fake = _ServingCluster(server, gateway_api)
    cfg = ClusterServing(
        "kaic",
        "kaic-run-x",
        "s3://kaic/objects/runs/kaic-run-x/model",
        ready_timeout_s=30,
        deployment_mode="RawDeployment",
        workers=1,
        threads=1,
        poll_s=0.01,
    )
    plan = exercise.LoadPlan((2,), 0.1, 0.5, 10, 100_000, 1, 64, 1e-3, 1e-3)
    rows = serve_on_cluster(fake, model, plan, cfg, profile, lambda _: None)  # type: ignore[arg-type]
    status = {o.check_id: o.status for o in rows}
    assert status["serve.ready"] is Status.PASSED
    assert status["serve.prediction_parity"] is Status.PASSED
    assert status["serve.service_metrics"] is Status.PASSED
    kinds = [o["kind"] for o in fake.applied]
    assert all(o["metadata"]["labels"][RUN_ID_LABEL] == "kaic-run-x" for o in fake.applied)  # type: ignore[index]
    route = next(o for o in rows if o.check_id == "serve.gateway_route")
    if gateway_api:
        assert kinds == ["InferenceService", "HTTPRoute"]
        assert route.status is Status.PASSED, route.message
        assert "to digits-kaic-run-x-predictor; parity passed" in route.message
        backends = fake.applied[1]["spec"]["rules"][0]["backendRefs"]  # type: ignore[index]
        assert backends == [{"kind": "Service", "name": "digits-kaic-run-x-predictor", "port": 80}]
    else:
        assert kinds == ["InferenceService"]
        assert route.status is Status.SKIPPED
        assert "not served" in route.message


def test_cluster_path_reports_a_service_that_never_gets_ready(model: ExportedModel) -> None:
    from kaic.profiles import load_profile
    from steps.serve.cluster import ClusterServing, serve_on_cluster

    fake = _ServingCluster(exercise.Endpoint(HOST, free_port()), False, polls_to_ready=10**9)
    cfg = ClusterServing(
        "kaic",
        "kaic-run-y",
        "s3://b/m",
        ready_timeout_s=0.2,
        deployment_mode="RawDeployment",
        workers=1,
        threads=1,
        poll_s=0.05,
    )
    rows = serve_on_cluster(fake, model, PLAN, cfg, load_profile("eks"), lambda _: None)  # type: ignore[arg-type]
    assert rows[0].status is Status.FAILED
    assert "timed out" in rows[0].message
    assert "Ready=False" in rows[0].message
    assert {o.status for o in rows[1:]} == {Status.SKIPPED}

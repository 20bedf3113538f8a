"""Every bad input, from every source kaic reads (flags, files, environment, run folders), gets one line
on stderr naming the bad value and where it came from, exit code 2, no traceback, and nothing written.

Each case runs `kaic ...` in-process in a fresh folder (the working directory, with KAIC_HOME inside it
not yet created); the whole folder tree is compared before and after: no file or folder may appear or
change. `test_counts_table` prints the measured table (cases, tracebacks, wrong exit codes, extra lines,
files written) that docs/reliability.md quotes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kaic.cli import main

pytestmark = pytest.mark.unit

HOME = "home"  # KAIC_HOME, relative to the case folder; absent unless a case's files create it
TOKEN = "s3cr3t-fake-token-0123456789"


def _wf(body: str, annotations: str = "") -> str:
    """A one-template Workflow whose template is `body` (indented under templates[0])."""
    return (
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  name: bad\n"
        + (f"  annotations:\n{annotations}" if annotations else "")
        + "spec:\n  entrypoint: main\n  templates:\n  - name: main\n" + body
    )


CONTAINER = "    container:\n      image: busybox\n      command: [echo, hi]\n"
GOOD_WF = _wf(CONTAINER)
ALIAS_BOMB = "".join(
    [
        "    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        *(f"    {chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
          f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8)),
    ]
)
DEEP_LIST = "[" * 5000 + "]" * 5000
DEEP_MAP = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n"
PROFILE = "name: mine\nplatform: mine\n"
STATUS_OK = '{"metadata": {"name": "r1"}, "status": {"phase": "Failed", "nodes": {}}}'
PARQUET_JUNK = b"PAR1" + os.urandom(64) + b"not parquet at all" + struct.pack("<i", 12) + b"PAR1"


def _dag(tasks: str) -> str:
    return _wf("    dag:\n      tasks:\n" + tasks) + "  - name: leaf\n" + CONTAINER


def _steps_item(extra: str) -> str:
    return _wf("    steps:\n    - - name: s\n        template: leaf\n" + extra) + "  - name: leaf\n" + CONTAINER


@dataclass
class Case:
    id: str
    argv: list[str]
    names: str  # the bad value (or its source) that the one line must name
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def wf_case(id: str, text: str | bytes, names: str, extra: tuple[str, ...] = ()) -> Case:
    return Case(id, ["local-run", "wf.yaml", *extra], names, {"wf.yaml": text})


CASES: list[Case] = [
    # --- local-run: the workflow file itself ------------------------------------------------------------
    wf_case("wf-binary", b"\x7fELF\x02\x01\x01\x00" + os.urandom(200), "binary"),
    wf_case("wf-not-utf8", b"kind: Workflow\nname: \xff\xfe\xfa\n", "UTF-8"),
    wf_case("wf-deep-list", DEEP_LIST, "deeper than"),
    wf_case("wf-deep-map", DEEP_MAP, "deeper than"),
    wf_case("wf-alias-bomb-annotations", _wf(CONTAINER, ALIAS_BOMB), "aliases"),
    wf_case("wf-alias-bomb-top", "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefghi", "bcdefghij", strict=True)), "aliases"),
    wf_case("wf-empty", "", "found 0"),
    wf_case("wf-two-docs", GOOD_WF + "---\n" + GOOD_WF, "found 2"),
    wf_case("wf-top-list", "- a\n- b\n", "got list"),
    wf_case("wf-top-scalar", "just a string\n", "got str"),
    wf_case("wf-kind-pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n", "'Pod'"),
    wf_case("wf-syntax", "kind: Workflow\nspec: [unclosed\n", "invalid YAML: line"),
    wf_case("wf-tab-indent", "kind: Workflow\nspec:\n\tentrypoint: x\n", "invalid YAML"),
    wf_case("wf-unknown-entrypoint", GOOD_WF.replace("entrypoint: main", "entrypoint: nope"), "nope"),
    wf_case("wf-expr-div-zero", _wf("    container:\n      image: b\n      args: ['{{=1/0}}']\n"), "1/0"),
    wf_case("wf-expr-mod-zero", _wf("    container:\n      image: b\n      args: ['{{=7 % 0}}']\n"), "7 % 0"),
    wf_case("wf-expr-syntax", _wf("    container:\n      image: b\n      args: ['{{=1 +}}']\n"), "1 +"),
    wf_case("wf-expr-unknown-fn", _wf("    container:\n      image: b\n      args: ['{{=nofn(1)}}']\n"), "nofn"),
    wf_case("wf-dag-unknown-dep", _dag("      - name: A\n        template: leaf\n        depends: E\n"), "'E'"),
    wf_case("wf-dag-cycle", _dag("      - name: A\n        template: leaf\n        depends: B\n"
                                 "      - name: B\n        template: leaf\n        depends: A\n"), "cycle"),
    wf_case("wf-no-kind-template", _wf("    metadata: {}\n"), "main"),
    wf_case("wf-retry-policy", _wf(CONTAINER + "    retryStrategy: {retryPolicy: Sometimes}\n"), "Sometimes"),
    wf_case("wf-parallelism-negative", _wf(CONTAINER + "    parallelism: -1\n"), "parallelism"),
    wf_case("wf-deadline-text", _wf(CONTAINER + "    activeDeadlineSeconds: soon\n"), "activeDeadlineSeconds"),
    wf_case("wf-timeout-units", _wf(CONTAINER + "    timeout: 5 parsecs\n"), "timeout"),
    wf_case("wf-node-selector", _wf(CONTAINER + "    nodeSelector: {gpu.vendor/x: 'yes'}\n"), "gpu.vendor/x"),
    wf_case("wf-with-items-map", _steps_item("        withItems: {a: 1}\n"), "withItems"),
    wf_case("wf-two-loops", _steps_item("        withItems: [1]\n        withParam: '[1]'\n"), "withParam"),
    wf_case("wf-on-exit-unknown", GOOD_WF.replace("entrypoint: main", "entrypoint: main\n  onExit: gone"), "gone"),
    wf_case("wf-suspend-forever", _wf("    suspend: {}\n"), "suspend"),
    wf_case("wf-bad-duration-suspend", _wf("    suspend: {duration: forever}\n"), "forever"),
    Case("wf-missing-file", ["local-run", "nope.yaml"], "nope.yaml"),
    Case("wf-is-directory", ["local-run", "adir"], "adir", {"adir/x": "x"}),
    Case("wf-too-large", ["local-run", "big.yaml"], "larger than", {"big.yaml": "#" * (16 * 1024 * 1024 + 10)}),
    # --- local-run: flags, environment, run folders ---------------------------------------------------
    Case("lr-param-no-equals", ["local-run", "wf.yaml", "-p", "oops"], "oops", {"wf.yaml": GOOD_WF}),
    Case("lr-max-parallel-0", ["local-run", "wf.yaml", "--max-parallel", "0"], "--max-parallel 0",
         {"wf.yaml": GOOD_WF}),
    Case("lr-max-parallel-neg", ["local-run", "wf.yaml", "--max-parallel", "-3"], "-3", {"wf.yaml": GOOD_WF}),
    Case("lr-max-parallel-text", ["local-run", "wf.yaml", "--max-parallel", "many"], "many", {"wf.yaml": GOOD_WF}),
    Case("lr-status-json-no-folder", ["local-run", "wf.yaml", "--status-json", "no/such/dir/s.json"],
         "--status-json", {"wf.yaml": GOOD_WF}),
    Case("lr-status-json-is-dir", ["local-run", "wf.yaml", "--status-json", "adir"], "adir",
         {"wf.yaml": GOOD_WF, "adir/x": "x"}),
    Case("lr-status-json-under-file", ["local-run", "wf.yaml", "--status-json", "afile/s.json"], "afile",
         {"wf.yaml": GOOD_WF, "afile": "x"}),
    Case("lr-status-json-proc", ["local-run", "wf.yaml", "--status-json", "/proc/kaic-no/s.json"], "/proc",
         {"wf.yaml": GOOD_WF}),
    Case("lr-kaic-home-file", ["local-run", "wf.yaml"], "KAIC_HOME", {"wf.yaml": GOOD_WF, HOME: "a file"}),
    Case("lr-name-slash", ["local-run", "wf.yaml", "--name", "a/b"], "a/b", {"wf.yaml": GOOD_WF}),
    Case("lr-template-binary", ["local-run", "wf.yaml", "--template", "t.yaml"], "binary",
         {"wf.yaml": GOOD_WF, "t.yaml": b"\x00\x01\x02"}),
    Case("lr-template-missing", ["local-run", "wf.yaml", "--template", "t.yaml"], "t.yaml", {"wf.yaml": GOOD_WF}),
    Case("lr-no-file", ["local-run"], "FILE"),
    Case("lr-resume-and-file", ["local-run", "wf.yaml", "--resume", "r1"], "--resume", {"wf.yaml": GOOD_WF}),
    Case("lr-resume-unknown", ["local-run", "--resume", "ghost"], "ghost"),
    Case("lr-resume-status-list", ["local-run", "--resume", "r1"], "expected a JSON object",
         {f"{HOME}/runs/r1/status.json": "[1, 2, 3]", f"{HOME}/runs/r1/manifest.json": GOOD_WF,
          f"{HOME}/runs/r1/parameters.json": "{}"}),
    Case("lr-resume-status-binary", ["local-run", "--resume", "r1"], "status",
         {f"{HOME}/runs/r1/status.json": b"\x00\xff\x00", f"{HOME}/runs/r1/manifest.json": "{}",
          f"{HOME}/runs/r1/parameters.json": "{}"}),
    Case("lr-resume-status-nodes-list", ["local-run", "--resume", "r1"], "nodes",
         {f"{HOME}/runs/r1/status.json": '{"status": {"nodes": [1]}}',
          f"{HOME}/runs/r1/manifest.json": '{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", '
          '"metadata": {"name": "r1"}, "spec": {"entrypoint": "main", "templates": [{"name": "main", '
          '"container": {"image": "b", "command": ["true"]}}]}}',
          f"{HOME}/runs/r1/parameters.json": "{}"}),
    Case("lr-resume-manifest-corrupt", ["local-run", "--resume", "r1"], "manifest.json",
         {f"{HOME}/runs/r1/status.json": STATUS_OK, f"{HOME}/runs/r1/manifest.json": "{not json",
          f"{HOME}/runs/r1/parameters.json": "{}"}),
    Case("lr-resume-params-list", ["local-run", "--resume", "r1"], "parameters.json",
         {f"{HOME}/runs/r1/status.json": STATUS_OK, f"{HOME}/runs/r1/manifest.json": "{}",
          f"{HOME}/runs/r1/parameters.json": "[]"}),
    # --- run ------------------------------------------------------------------------------------------
    Case("run-max-parallel-0", ["run", "--max-parallel", "0"], "--max-parallel 0"),
    Case("run-max-parallel-neg", ["run", "--max-parallel", "-1"], "--max-parallel -1"),
    Case("run-world-size-0", ["run", "--world-size", "0"], "--world-size 0"),
    Case("run-timeout-0", ["run", "--timeout", "0"], "--timeout 0"),
    Case("run-suite-bad", ["run", "--suite", "huge"], "huge"),
    Case("run-backend-bad", ["run", "--backend", "k8s"], "k8s"),
    Case("run-profile-unknown", ["run", "--profile", "nowhere"], "nowhere"),
    Case("run-kaic-home-file", ["run"], "KAIC_HOME", {HOME: "a file"}),
    Case("run-resume-unknown", ["run", "--resume", "ghost"], "ghost", {f"{HOME}/runs/.keep": ""}),
    Case("run-argo-no-server", ["run", "--backend", "argo"], "--argo-server", {f"{HOME}/runs/.keep": ""}),
    Case("run-argo-http-token", ["run", "--backend", "argo", "--argo-server", "http://argo.example.com:2746"],
         "http://argo.example.com:2746", {f"{HOME}/runs/.keep": ""}, {"KAIC_ARGO_TOKEN": TOKEN}),
    Case("run-argo-ftp", ["run", "--backend", "argo", "--argo-server", "ftp://x"], "ftp://x",
         {f"{HOME}/runs/.keep": ""}),
    # --- profiles (through run, compile and step) -------------------------------------------------------
    *[
        Case(f"profile-{id}", ["compile", "--profile", "p.yaml", "--out", "out"], names, {"p.yaml": text})
        for id, text, names in [
            ("concurrency-zero-neg", PROFILE + "serving: {concurrency: [0, -1]}\n", "concurrency"),
            ("concurrency-empty", PROFILE + "serving: {concurrency: []}\n", "concurrency"),
            ("concurrency-text", PROFILE + "serving: {concurrency: [a]}\n", "concurrency"),
            ("binary", b"\x00\x01\x02\x03", "binary"),
            ("alias-bomb", PROFILE + "description: x\nx:\n" + ALIAS_BOMB, "aliases"),
            ("deep", DEEP_LIST, "deeper than"),
            ("top-list", "- a\n", "expected a mapping"),
            ("unknown-key", PROFILE + "colour: blue\n", "colour"),
            ("threshold-op", PROFILE + "thresholds: [{metric: train_samples_per_s, op: '=>', value: 1}]\n", "op"),
            ("threshold-metric", PROFILE + "thresholds: [{metric: warp_speed, op: '>', value: 1}]\n", "warp_speed"),
            ("world-size-0", PROFILE + "training: {world_size: 0}\n", "world_size"),
            ("steps-text", PROFILE + "training: {steps: lots}\n", "steps"),
            ("duration-neg", PROFILE + "serving: {duration_s: -3}\n", "duration_s"),
            ("launcher", PROFILE + "training: {launcher: slurm}\n", "launcher"),
            ("no-platform", "name: mine\n", "platform"),
            ("syntax", "name: [mine\n", "invalid YAML"),
        ]
    ],
    # --- compile, submit, schedule ----------------------------------------------------------------------
    Case("compile-out-is-file", ["compile", "--out", "afile"], "afile", {"afile": "x"}),
    Case("compile-out-under-file", ["compile", "--out", "afile/sub"], "afile", {"afile": "x"}),
    Case("compile-image-bad", ["compile", "--image", "bad image!", "--out", "out"], "bad image!"),
    *[
        Case(f"cron-{id}", ["schedule", "--cron", expr, "--argo-server", "https://argo.example.com"], names)
        for id, expr, names in [
            ("minute-99", "99 2 * * *", "minute 99"),
            ("hour-24", "0 24 * * *", "hour 24"),
            ("dom-0", "0 2 0 * *", "day of month 0"),
            ("dom-32", "0 2 32 * *", "day of month 32"),
            ("month-13", "0 2 * 13 *", "month 13"),
            ("dow-9", "0 2 * * 9", "day of week 9"),
            ("step-0", "*/0 2 * * *", "step"),
            ("range-reversed", "30-10 2 * * *", "range"),
            ("four-fields", "0 2 * *", "not a cron expression"),
            ("words", "every night", "every night"),
            ("month-name", "0 2 * FOO *", "FOO"),
        ]
    ],
    Case("compile-cron-99", ["compile", "--cron", "99 * * * *", "--out", "out"], "minute 99"),
    Case("schedule-timezone", ["schedule", "--timezone", "Mars/Olympus", "--argo-server", "https://a.example"],
         "Mars/Olympus"),
    Case("submit-ftp", ["submit", "--argo-server", "ftp://x"], "ftp://x"),
    Case("submit-no-host", ["submit", "--argo-server", "https://"], "https://"),
    Case("submit-port", ["submit", "--argo-server", "https://a.example:99999"], "99999"),
    Case("submit-http-token", ["submit", "--argo-server", "http://argo.example.com:2746"], "--insecure-http",
         env={"KAIC_ARGO_TOKEN": TOKEN}),
    Case("submit-token-newline", ["submit", "--argo-server", "https://argo.example.com"], "KAIC_ARGO_TOKEN",
         env={"KAIC_ARGO_TOKEN": "abc\ndef-secret-part"}),
    Case("submit-token-ctrl", ["submit", "--argo-server", "https://argo.example.com"], "KAIC_ARGO_TOKEN",
         env={"KAIC_ARGO_TOKEN": "abc\x07defghij"}),
    Case("submit-token-file-missing", ["submit", "--argo-server", "https://argo.example.com"],
         "KAIC_ARGO_TOKEN_FILE", env={"KAIC_ARGO_TOKEN_FILE": "/nonexistent/token"}),
    Case("submit-token-file-empty", ["submit", "--argo-server", "https://argo.example.com"], "empty",
         {"tok": ""}, env={"KAIC_ARGO_TOKEN_FILE": "tok"}),
    Case("submit-token-file-two-lines", ["submit", "--argo-server", "https://argo.example.com"],
         "KAIC_ARGO_TOKEN_FILE", {"tok": "line-one-secret\nline-two-secret\n"}, env={"KAIC_ARGO_TOKEN_FILE": "tok"}),
    Case("submit-param-unknown", ["submit", "--argo-server", "https://a.example", "-p", "colour=red"], "colour"),
    Case("submit-param-suite", ["submit", "--argo-server", "https://a.example", "-p", "suite=huge"], "suite"),
    Case("submit-timeout-0", ["submit", "--argo-server", "https://a.example", "--timeout", "0"], "--timeout"),
    # --- report -----------------------------------------------------------------------------------------
    Case("report-run-slash", ["report", "../etc"], "../etc"),
    Case("report-run-unknown", ["report", "ghost"], "ghost"),
    Case("report-out-under-file", ["report", "r1", "--out", "afile/out"], "afile", {"afile": "x"}),
    Case("report-out-is-file", ["report", "r1", "--out", "afile"], "afile", {"afile": "x"}),
    Case("report-out-proc", ["report", "r1", "--out", "/proc/kaic-no/out"], "/proc"),
    Case("report-k8s-version", ["report", "r1", "--k8s-version", "9.99"], "9.99"),
    Case("report-template-binary", ["report", "r1", "--template", "t.yaml"], "t.yaml", {"t.yaml": b"\x00\x01"}),
    Case("report-template-missing", ["report", "r1", "--template", "t.yaml"], "t.yaml"),
    Case("report-corrupt-shard", ["report", "r1"], "unreadable Parquet",
         {f"{HOME}/objects/runs/r1/rows/train.parquet": PARQUET_JUNK}),
    Case("report-corrupt-dataset", ["report", "r1"], "r1.parquet",
         {f"{HOME}/results/platform=local/date=2026-01-01/r1.parquet": PARQUET_JUNK}),
    Case("report-object-store-ftp", ["report", "r1", "--object-store", "ftp://x"], "ftp://x"),
    Case("report-object-store-dotdot", ["report", "r1", "--object-store", "file:///base/../../etc/x"], "outside"),
    Case("report-env-object-store", ["report", "r1"], "ftp://y", env={"KAIC_OBJECT_STORE": "ftp://y"}),
    Case("report-object-store-bucket", ["report", "r1", "--object-store", "s3://UPPER_case"], "UPPER_case"),
    Case("report-s3-credentials-in-uri", ["report", "r1", "--object-store", "s3://key:secretvalue@bucket"],
         "credentials"),
    # --- compare ----------------------------------------------------------------------------------------
    Case("compare-results-missing", ["compare", "--results", "nowhere"], "nowhere"),
    Case("compare-results-ftp", ["compare", "--results", "ftp://x"], "ftp://x"),
    Case("compare-results-dotdot", ["compare", "--results", "file:///base/../../etc/x"], "outside"),
    Case("compare-results-is-file", ["compare", "--results", "afile"], "afile", {"afile": "x"}),
    Case("compare-corrupt-parquet", ["compare", "--results", "res"], "unreadable Parquet",
         {"res/platform=local/date=2026-01-01/r1.parquet": PARQUET_JUNK}),
    Case("compare-since", ["compare", "--since", "yesterday"], "yesterday"),
    Case("compare-last-0", ["compare", "--last", "0"], "--last 0"),
    Case("compare-out-dir", ["compare", "--out", "adir"], "adir", {"adir/x": "x"}),
    Case("compare-html-under-file", ["compare", "--html", "afile/x.html"], "afile", {"afile": "x"}),
    Case("compare-by-bad", ["compare", "--by", "colour"], "colour"),
    # --- sync -------------------------------------------------------------------------------------------
    Case("sync-mlflow-ftp", ["sync", "r1", "--mlflow-uri", "ftp://x"], "ftp://x"),
    Case("sync-mlflow-no-host", ["sync", "r1", "--mlflow-uri", "http://"], "http://"),
    Case("sync-mlflow-env-ftp", ["sync", "r1"], "ftp://z", env={"KAIC_MLFLOW_URI": "ftp://z"}),
    Case("sync-run-dotdot", ["sync", "..", "--mlflow-uri", "sqlite:///x.db"], "'..'"),
    # --- step -------------------------------------------------------------------------------------------
    Case("step-unknown", ["step", "bake"], "bake"),
    Case("step-train-world-size", ["step", "train", "--world-size", "0"], "world"),
    Case("step-profile-binary", ["step", "data", "--profile", "p.yaml"], "binary", {"p.yaml": b"\x00"}),
    Case("step-object-store-ftp", ["step", "data", "--object-store", "ftp://x"], "ftp://x"),
    Case("step-mlflow-ftp", ["step", "data", "--mlflow-uri", "ftp://x"], "ftp://x"),
    Case("step-kaic-home-file", ["step", "data"], "KAIC_HOME", {HOME: "a file"}),
    Case("step-suite-bad", ["step", "data", "--suite", "huge"], "huge"),
    Case("step-image-bad", ["step", "provision", "--image", "not an image!"], "--image 'not an image!'"),
    # --- requirements, snapshot, ui ---------------------------------------------------------------------
    Case("requirements-version", ["requirements", "--k8s-version", "1.99"], "1.99"),
    Case("requirements-format", ["requirements", "--format", "xml"], "xml"),
    Case("snapshot-kubeconfig-missing", ["snapshot", "--out", "snap", "--kubeconfig", "nokube"], "nokube"),
    Case("snapshot-kubeconfig-binary", ["snapshot", "--out", "snap", "--kubeconfig", "kc"], "kc", {"kc": b"\x00"}),
    Case("ui-port", ["ui", "--port", "99999"], "99999"),
    Case("unknown-command", ["bake"], "bake"),
]


def _tree(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under root with (is_dir, size, mtime_ns) of files: what 'nothing written' is checked
    against (no file or folder appears, no file changes)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            # A folder counts by its existence (a write probe, made and removed, touches its mtime).
            out[str(p.relative_to(root))] = (True, 0, 0) if p.is_dir() else (False, st.st_size, st.st_mtime_ns)
    return out


@dataclass
class Outcome:
    code: int
    stderr: str
    written: list[str]


def run_case(case: Case, tmp: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> Outcome:
    work = tmp / case.id
    work.mkdir()
    for rel, content in case.files.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    monkeypatch.chdir(work)
    monkeypatch.setenv("KAIC_HOME", str(work / HOME))
    monkeypatch.setenv("KAIC_MLFLOW_URI", f"sqlite:///{work / HOME / 'mlflow.db'}")
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    before = _tree(work)
    capsys.readouterr()
    try:
        code = main(case.argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    after = _tree(work)
    written = sorted(k for k in set(after) | set(before) if after.get(k) != before.get(k))
    return Outcome(code, err, written)


@pytest.fixture(scope="module")
def results() -> dict[str, Outcome]:
    return {}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str], results: dict[str, Outcome]) -> None:
    out = run_case(case, tmp_path, monkeypatch, capsys)
    results[case.id] = out
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in out.stderr, out.stderr
    assert out.code == 2, f"exit {out.code}: {out.stderr}"
    assert len(lines) == 1, out.stderr
    assert case.names in lines[0], f"{case.names!r} not named in: {lines[0]}"
    assert not out.written, f"written: {out.written}"
    for secret in (TOKEN, "def-secret-part", "defghij", "line-two-secret", "secretvalue"):
        assert secret not in out.stderr


def test_counts_table(results: dict[str, Outcome], capsys: pytest.CaptureFixture[str]) -> None:
    """The measured table (run after the cases; -p no:randomly keeps the order)."""
    if len(results) < len(CASES):
        pytest.skip("run with the whole table to count it")
    tracebacks = sum("Traceback" in o.stderr for o in results.values())
    wrong = sum(o.code != 2 for o in results.values())
    extra = sum(len([ln for ln in o.stderr.splitlines() if ln.strip()]) != 1 for o in results.values())
    written = sum(bool(o.written) for o in results.values())
    with capsys.disabled():
        print(f"\nbad inputs: {len(results)} | tracebacks: {tracebacks} | wrong exit codes: {wrong} | "
              f"not one line: {extra} | something written: {written}")
    assert len(results) >= 100
    assert (tracebacks, wrong, extra, written) == (0, 0, 0, 0)

"""Faults made to happen for real, each checked for "nothing lost, nothing left running".

- the executor SIGKILLed while torchrun and its workers run; the next kaic command closes the run;
- a torchrun worker SIGKILLed mid-training: the run still ends, teardown runs, every step's rows are kept;
- a double SIGINT: every process group dies, the run gets a final phase;
- a full disk (a small tmpfs, filled by a node): the executor records a final phase, runs onExit, exits non-zero;
- the object store (moto's S3 server) and the MLflow server stalled (SIGSTOP) and then stopped mid-run:
  rows wait on local disk, `kaic sync` publishes them and backfills MLflow once the servers are back;
- two runs in one KAIC_HOME at once (one MLflow database to create and migrate).

"Nothing left running" is measured, not assumed: every process whose environment carries the run's
KAIC_HOME (executor, nodes, torchrun, workers, model server) and every port they listened on.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from kaic.executor.liveness import DIED_MESSAGE
from tests.integration.conftest import S3Server, ServerProcess, start_server

pytestmark = pytest.mark.faults

KAIC = str(Path(sys.executable).parent / "kaic")
RUN_TIMEOUT_S = 600.0


# --- watching a run from outside --------------------------------------------------------------------


def wait_for(what: str, cond: Callable[[], object], timeout: float, proc: subprocess.Popen[bytes] | None = None,
             poll: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run exited ({proc.returncode}) before: {what}")
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for: {what}")


def run_processes(home: Path) -> list[psutil.Process]:
    """Every live process started for the run: they all carry KAIC_HOME=<home> in their environment."""
    out = []
    for p in psutil.process_iter(["pid"]):
        if p.pid == os.getpid():
            continue
        try:
            if p.environ().get("KAIC_HOME") == str(home) and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


def listening_ports(procs: list[psutil.Process]) -> set[int]:
    ports = set()
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            conns = getattr(p, "net_connections", None) or p.connections  # psutil < 6 names it connections
            ports |= {c.laddr.port for c in conns(kind="inet") if c.status == psutil.CONN_LISTEN}
    return ports


def port_listening(port: int) -> bool:
    return any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
               for c in psutil.net_connections(kind="inet"))


def assert_nothing_left(home: Path, ports: set[int], timeout: float = 90.0) -> None:
    wait_for("every process of the run to be gone", lambda: not run_processes(home), timeout)
    # a process in the middle of exiting may no longer show its environment while its sockets still close
    with contextlib.suppress(AssertionError, TimeoutError):
        wait_for("the run's ports to close", lambda: not any(port_listening(p) for p in ports), timeout)
    assert not [p for p in ports if port_listening(p)], f"still listening: {ports}"


def workers(home: Path) -> list[int]:
    """Pids of the live torchrun workers (each writes runs/<run>/steps/train/<launch>.pids/rank-N.pid)."""
    pids = []
    for f in home.glob("runs/*/steps/train/*.pids/rank-*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(f.read_text())
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                pids.append(pid)
    return pids


def status(home: Path) -> dict[str, object]:
    [path] = list(home.glob("runs/*/status.json"))
    doc: dict[str, object] = json.loads(path.read_text())
    return doc


def node_phases(doc: dict[str, object]) -> dict[str, str]:
    nodes = doc["status"]["nodes"]  # type: ignore[index]
    return {n["displayName"]: n["phase"] for n in nodes.values()}  # type: ignore[attr-defined]


def staged_steps(objects: Path) -> set[str]:
    return {p.stem for p in objects.glob("runs/*/rows/*.parquet")}


@contextlib.contextmanager
def kaic_run(home: Path, log: Path, *args: str, env: dict[str, str] | None = None
             ) -> Iterator[subprocess.Popen[bytes]]:
    """`kaic run --profile local --suite quick` in the background; SIGKILLed (with its group) on the way out."""
    environ = {k: v for k, v in os.environ.items() if k != "KAIC_MLFLOW_URI"}  # default: the run's home
    environ.update({"KAIC_HOME": str(home), **(env or {})})
    with log.open("wb") as out:
        proc = subprocess.Popen([KAIC, "run", "--profile", "local", "--suite", "quick", *args], env=environ,
                                stdout=out, stderr=subprocess.STDOUT, cwd=home.parent)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in run_processes(home):  # never leak into other tests, whatever the assertions said
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()


def kaic(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "KAIC_HOME": str(home), **(env or {})}
    return subprocess.run([KAIC, *args], env=environ, capture_output=True, text=True, timeout=timeout,
                          cwd=home.parent)


# --- the executor, its workers, its signals ---------------------------------------------------------


def test_sigkill_of_the_executor_leaves_nothing_running(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with kaic_run(home, tmp_path / "run.log") as proc:
        wait_for("torchrun workers", lambda: len(workers(home)) >= 2, RUN_TIMEOUT_S, proc)
        procs = run_processes(home)
        ports = listening_ports(procs)
        names = {p.name() for p in procs}
        assert len(procs) >= 5, names  # executor, train node, torchrun, 2 workers
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The guards end the chain, level by level: node, torchrun, workers; at once, not when training ends.
        assert_nothing_left(home, ports, timeout=20)
    doc = status(home)
    assert doc["status"]["phase"] == "Running"  # type: ignore[index]  # nobody could say otherwise yet
    assert staged_steps(home / "objects") >= {"provision", "data"}  # what finished is kept
    # The next kaic command in that home closes the dead run.
    done = kaic(home, "requirements", "--k8s-version", "1.35")
    assert done.returncode == 0, done.stderr
    assert "its executor died" in done.stderr
    doc = status(home)
    assert doc["status"]["phase"] == "Failed"  # type: ignore[index]
    assert doc["status"]["message"] == DIED_MESSAGE  # type: ignore[index]
    assert "Running" not in node_phases(doc).values()


FAKE_SECRETS = {
    "KAIC_ARGO_TOKEN": "fake-argo-token-1a2b3c4d",
    "KAIC_S3_ACCESS_KEY": "FAKEACCESSKEY55667788",
    "KAIC_S3_SECRET_KEY": "fake-s3-secret-key-99aa",
    "AWS_ACCESS_KEY_ID": "FAKEAWSKEYID11223344",
    "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-key-55bb",
}


def files_containing(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """Every file under root (binary ones too: sqlite, Parquet) holding one of the needles."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n for n in needles if n.encode() in data]
            if hits:
                found[str(path)] = hits
    return found


def test_sigkill_of_a_torchrun_worker_ends_the_run_cleanly(tmp_path: Path) -> None:
    """Also the secrets check: the run has fake credentials in its environment, and nothing it writes
    (node logs, status, reports, objects, results, mlflow.db, MLflow artifacts) may contain them."""
    home = tmp_path / "home"
    with kaic_run(home, tmp_path / "run.log", env=FAKE_SECRETS) as proc:
        pids = wait_for("torchrun workers", lambda: workers(home) if len(workers(home)) >= 2 else None,
                        RUN_TIMEOUT_S, proc)
        ports = listening_ports(run_processes(home))
        os.kill(max(pids), signal.SIGKILL)  # type: ignore[arg-type]
        code = proc.wait(timeout=RUN_TIMEOUT_S)
        assert_nothing_left(home, ports)
    log = (tmp_path / "run.log").read_text()
    assert "Traceback" not in log
    doc = status(home)
    phases = node_phases(doc)
    assert doc["status"]["phase"] in ("Succeeded", "Failed"), doc["status"]  # type: ignore[index]
    assert code == (0 if doc["status"]["phase"] == "Succeeded" else 1)  # type: ignore[index]
    assert phases.get("onExit") == "Succeeded", phases  # teardown ran
    ran = {name for name, phase in phases.items() if phase in ("Succeeded", "Failed")}
    expected = {s for s in ("provision", "data", "train", "serve", "report") if s in ran} | {"teardown"}
    assert staged_steps(home / "objects") >= expected  # every step that ran kept its rows
    assert files_containing(tmp_path, list(FAKE_SECRETS.values())) == {}


def test_double_sigint_kills_every_process_group(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with kaic_run(home, tmp_path / "run.log") as proc:
        wait_for("torchrun workers", lambda: len(workers(home)) >= 2, RUN_TIMEOUT_S, proc)
        ports = listening_ports(run_processes(home))
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
        assert_nothing_left(home, ports)
    assert code != 0
    doc = status(home)
    assert doc["status"]["phase"] == "Failed"  # type: ignore[index]
    assert "interrupted" in doc["status"]["message"]  # type: ignore[index]
    assert "Running" not in node_phases(doc).values()
    assert "Traceback" not in (tmp_path / "run.log").read_text()


# --- a full disk ------------------------------------------------------------------------------------

FILL_WORKFLOW = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: fill-disk}
spec:
  entrypoint: main
  onExit: exit-handler
  templates:
  - name: main
    steps:
    - - {name: fill, template: fill}
    - - {name: after, template: say}
  - name: fill
    script:
      image: python
      command: [python]
      source: |
        try:
            with open("../../ballast", "wb") as f:   # in the run folder, on the tmpfs
                while True:
                    f.write(b"\\0" * 65536)
        except OSError as e:
            raise SystemExit(f"disk full: {e}")
  - name: say
    container: {image: busybox, command: [sh, -c, "echo after"]}
  - name: exit-handler
    container: {image: busybox, command: [sh, -c, "echo exit handler: {{workflow.status}}"]}
"""


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_gives_a_final_phase_runs_on_exit_and_exits_non_zero(tmp_path: Path, small_tmpfs: Path) -> None:
    home = small_tmpfs / "home"
    wf = tmp_path / "fill.yaml"
    wf.write_text(FILL_WORKFLOW)
    done = kaic(home, "local-run", str(wf), timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    free = os.statvfs(small_tmpfs)
    assert free.f_bavail * free.f_frsize < 2 << 20  # it really was (nearly) full
    doc = status(home)
    phases = node_phases(doc)
    assert doc["status"]["phase"] == "Failed"  # type: ignore[index]
    assert phases["fill"] == "Failed"
    assert phases.get("onExit") in ("Succeeded", "Failed"), phases  # the exit handler ran
    assert "Running" not in phases.values()
    assert not run_processes(home)


# --- servers stalled and stopped mid-run --------------------------------------------------------------


def _serve(argv: Callable[[int], list[str]], log: Path, ready: str, timeout: float, port: int | None = None,
           env: dict[str, str] | None = None) -> tuple[ServerProcess, str]:
    """A server on a free port, or on `port` (a restart where the clients expect it)."""
    if port is None:
        return start_server(argv, log, ready, timeout=timeout, env=env)
    server = ServerProcess(argv(port), log)
    server.start(env)
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_ready(url + ready, timeout)
    except RuntimeError:
        server.stop()  # never leak a server that did not come up in time
        raise
    return server, url


def _moto(log: Path, port: int | None = None) -> tuple[ServerProcess, str]:
    moto = Path(sys.executable).parent / "moto_server"
    return _serve(lambda p: [str(moto), "-H", "127.0.0.1", "-p", str(p)], log, "/moto-api/", 60, port)


def _mlflow(root: Path, port: int | None = None) -> tuple[ServerProcess, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}

    def argv(p: int) -> list[str]:
        return [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
                "--host", "127.0.0.1", "--port", str(p), "--workers", "1"]

    return _serve(argv, root / "server.log", "/health", 600, port, env)  # minutes on a loaded machine


def _signal(server: ServerProcess, sig: signal.Signals) -> None:
    assert server.proc is not None
    os.killpg(server.proc.pid, sig)


def test_object_store_and_mlflow_outage_lose_no_row(tmp_path: Path) -> None:
    from kaic.tracking import MlflowTracker

    home = tmp_path / "home"
    moto, s3_url = _moto(tmp_path / "moto.log")
    mlflow, mlflow_url = _mlflow(tmp_path)
    s3 = S3Server(s3_url)
    s3.create_bucket("kaic")
    env = {"KAIC_S3_ENDPOINT": s3_url, "KAIC_S3_ACCESS_KEY": s3.access_key, "KAIC_S3_SECRET_KEY": s3.secret_key,
           "KAIC_OBJECT_STORE": "s3://kaic/objects", "KAIC_RESULTS": "s3://kaic/results",
           "KAIC_MLFLOW_URI": mlflow_url, "KAIC_STORE_RETRY_S": "15", "KAIC_S3_TIMEOUT_S": "3"}

    def s3_objects() -> dict[str, bytes]:
        c = s3.client()
        out = {}
        for o in c.list_objects("kaic", recursive=True):
            resp = c.get_object("kaic", o.object_name)
            try:
                out[o.object_name] = resp.read()
            finally:
                resp.close()
                resp.release_conn()
        return out

    def s3_shards() -> set[str]:
        keys = {o.object_name for o in s3.client().list_objects("kaic", prefix="objects/runs/", recursive=True)}
        return {Path(k).stem for k in keys if "/rows/" in k}

    try:
        with kaic_run(home, tmp_path / "run.log", env=env) as proc:
            # Stall both servers (SIGSTOP: connections hang, nothing answers) while data/train run...
            wait_for("provision's rows in S3", lambda: "provision" in s3_shards(), RUN_TIMEOUT_S, proc)
            _signal(moto, signal.SIGSTOP)
            _signal(mlflow, signal.SIGSTOP)
            time.sleep(6)
            _signal(moto, signal.SIGCONT)  # ...and let them come back: retries bridge the gap
            _signal(mlflow, signal.SIGCONT)
            wait_for("train's rows in S3", lambda: "train" in s3_shards(), RUN_TIMEOUT_S, proc, poll=1)
            before_stop = s3_shards()
            kept = s3_objects()  # what a durable store would still hold after its outage (moto forgets)
            # Then stop both for good: the rest of the run stages its rows on local disk.
            moto.stop()
            mlflow.stop()
            code = proc.wait(timeout=RUN_TIMEOUT_S)
            assert_nothing_left(home, set())
        log = (tmp_path / "run.log").read_text()
        assert "Traceback" not in log
        phases = node_phases(status(home))
        assert phases.get("onExit") in ("Succeeded", "Failed"), phases  # teardown ran with the store down
        assert code == 1
        [run_dir] = list((home / "runs").iterdir())
        run_id = run_dir.name
        waiting = {p.stem for p in (run_dir / "outbox").rglob("*.parquet")}
        assert "teardown" in waiting  # kept locally, not lost
        ran = {n for n, ph in phases.items() if ph in ("Succeeded", "Failed")} | {"teardown"}
        steps = {"provision", "data", "train", "serve", "report", "teardown"} & ran
        assert steps <= before_stop | waiting  # every step that ran has its rows somewhere

        # The servers come back (the same ports): `kaic sync` publishes what waited and backfills MLflow.
        moto, _ = _moto(tmp_path / "moto2.log", port=int(s3_url.rsplit(":", 1)[1]))
        s3.create_bucket("kaic")  # moto keeps nothing across a restart: put back what it held
        client = s3.client()
        for key, data in kept.items():
            client.put_object("kaic", key, io.BytesIO(data), len(data))
        mlflow, _ = _mlflow(tmp_path, port=int(mlflow_url.rsplit(":", 1)[1]))
        done = kaic(home, "sync", run_id, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "published" in done.stdout
        assert not list((run_dir / "outbox").rglob("*.parquet"))
        assert waiting <= s3_shards()
        tracker = MlflowTracker(mlflow_url)
        tracker.connect()
        logged = {r.data.tags.get("kaic.step") for r in tracker.child_runs(run_id)}
        assert steps <= logged, (steps, logged)
    finally:
        for server in (moto, mlflow):
            with contextlib.suppress(ProcessLookupError):
                if server.proc is not None and server.proc.poll() is None:
                    _signal(server, signal.SIGCONT)
            server.stop()


# --- two runs in one home ---------------------------------------------------------------------------


def test_two_runs_in_one_home_share_the_mlflow_store(tmp_path: Path) -> None:
    """Three processes create and migrate one fresh sqlite MLflow store at the same moment, then two runs'
    steps log to it at once: every one must succeed (no migration race, no lost MLflow run)."""
    from kaic.tracking import MlflowTracker

    home = tmp_path / "home"
    env = {"KAIC_MLFLOW_URI": f"sqlite:///{home / 'mlflow.db'}"}
    home.mkdir()
    script = ("import sys; from kaic.tracking import MlflowTracker; t = MlflowTracker(sys.argv[1]); "
              "t.connect(); print(t._experiment_id)")
    procs = [subprocess.Popen([sys.executable, "-c", script, env["KAIC_MLFLOW_URI"]],
                              env={**os.environ, "KAIC_HOME": str(home)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-2000:] for o in outs]
    assert len({o[0].strip() for o in outs}) == 1  # one experiment, created once
    # And two runs' steps at once in that home: both log to MLflow and stage their rows.
    procs2 = [subprocess.Popen([KAIC, "step", "provision", "--run-id", run_id],
                               env={**os.environ, "KAIC_HOME": str(home), **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) for run_id in ("run-a", "run-b")]
    outs2 = [p.communicate(timeout=300)[0] for p in procs2]
    assert [p.returncode for p in procs2] == [0, 0], [o[-2000:] for o in outs2]
    assert not [o for o in outs2 if "warning: MLflow" in o or "Traceback" in o]
    tracker = MlflowTracker(env["KAIC_MLFLOW_URI"])
    tracker.connect()
    for run_id in ("run-a", "run-b"):
        assert {r.data.tags.get("kaic.step") for r in tracker.child_runs(run_id)} == {"provision"}
        assert (home / "objects" / "runs" / run_id / "rows" / "provision.parquet").is_file()
    assert not run_processes(home)


# --- the registry: what a dead owner left ------------------------------------------------------------

STRAY = """
import subprocess, sys, time
from pathlib import Path
import psutil
from kaic import localproc
home = Path(sys.argv[1])
# Started without its lifeline, as a foreign tool might: only the registry knows about it.
p = subprocess.Popen(["sleep", "300"], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rec = localproc.ProcRecord("stray", p.pid, p.pid, ("sleep", "300"), None, time.time(),
                           psutil.Process(p.pid).create_time(), *localproc.owner())
d = localproc.procs_dir("run-x", home)
d.mkdir(parents=True)
localproc.write_record(d / "stray.json", rec)
print(p.pid, flush=True)
"""


def test_the_next_command_reaps_what_a_dead_owner_left_registered(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-c", STRAY, str(home)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # its owner is gone, it is not
    try:
        out = kaic(home, "requirements", "--k8s-version", "1.35")
        assert out.returncode == 0, out.stderr
        assert f"stopped an orphaned process left by an earlier run: stray (pid {pid}, run run-x)" in out.stderr
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert not list(home.glob("runs/*/procs/*.json"))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

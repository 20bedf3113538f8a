"""Real local servers for integration tests, started as processes on 127.0.0.1 and stopped in `finally`.

- `s3_server` (session): moto in server mode over real HTTP. Sets nothing globally; gives the
  endpoint, keys and `create_bucket(name)`.
- `s3_env` (per test): points kaic's S3 settings at `s3_server` (KAIC_S3_ENDPOINT/ACCESS_KEY/SECRET_KEY)
  and gives an empty bucket `kaic`.
- `mlflow_server` (session): a real `mlflow server` on sqlite with a local artifact root; yields its URL.
  Tests share it, so give runs distinct ids (or experiments) rather than expecting an empty server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.prometheus_fixtures import digits_model, prometheus_binary  # noqa: F401 (fixtures for the tier)

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A port that was free a moment ago (servers that cannot bind port 0 and report it need this)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status < 500)
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


@dataclass
class ServerProcess:
    """A server in its own process group, so `stop()` also ends the workers it forked."""

    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, env: dict[str, str] | None = None) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env,
            )

    def wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited with {self.proc.returncode}: {_tail(self.log)}")
            if _answers(url):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.argv[0]} did not answer {url} within {timeout:.0f}s: {_tail(self.log)}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def start_server(argv_for_port: Callable[[int], list[str]], log: Path, ready_path: str, timeout: float,
                 env: dict[str, str] | None = None, attempts: int = 3) -> tuple[ServerProcess, str]:
    """Start a server on a free port (retrying if another process grabbed the port first)."""
    last: Exception | None = None
    for _ in range(attempts):
        port = free_port()
        server = ServerProcess(argv_for_port(port), log)
        server.start(env)
        url = f"http://127.0.0.1:{port}"
        try:
            server.wait_ready(url + ready_path, timeout)
            return server, url
        except RuntimeError as exc:
            server.stop()
            last = exc
    raise RuntimeError(f"could not start {argv_for_port(0)[0]}: {last}")


# --- S3 (moto server) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str = "kaic-test-access"
    secret_key: str = "kaic-test-secret"  # moto accepts any credentials
    region: str = "us-east-1"

    def client(self):  # type: ignore[no-untyped-def]
        from minio import Minio

        host = self.endpoint_url.removeprefix("http://")
        return Minio(host, access_key=self.access_key, secret_key=self.secret_key, secure=False,
                     region=self.region)

    def create_bucket(self, name: str) -> None:
        c = self.client()
        if not c.bucket_exists(name):
            c.make_bucket(name)

    def empty_bucket(self, name: str) -> None:
        from minio.deleteobjects import DeleteObject

        c = self.client()
        doomed = [DeleteObject(o.object_name) for o in c.list_objects(name, recursive=True)]
        for err in c.remove_objects(name, doomed):
            raise RuntimeError(f"could not empty bucket {name}: {err}")

    def __repr__(self) -> str:
        return f"S3Server(endpoint_url={self.endpoint_url!r})"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    moto = VENV_BIN / "moto_server"
    argv: Callable[[int], list[str]] = (
        (lambda p: [str(moto), "-H", "127.0.0.1", "-p", str(p)]) if moto.exists()
        else (lambda p: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(p)])
    )
    server, url = start_server(argv, log, "/moto-api/", timeout=30)
    try:
        yield S3Server(url)
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> S3Server:
    """kaic's S3 settings pointed at the moto server, with an empty bucket `kaic`."""
    monkeypatch.setenv("KAIC_S3_ENDPOINT", s3_server.endpoint_url)
    monkeypatch.setenv("KAIC_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("KAIC_S3_SECRET_KEY", s3_server.secret_key)
    monkeypatch.setenv("KAIC_S3_REGION", s3_server.region)
    s3_server.create_bucket("kaic")
    s3_server.empty_bucket("kaic")
    return s3_server


# --- MLflow tracking server ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` process (sqlite backend, proxied local artifacts); yields http://127.0.0.1:PORT."""
    root = tmp_path_factory.mktemp("mlflow-server")
    mlflow = VENV_BIN / "mlflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}

    def argv(port: int) -> list[str]:
        return [
            str(mlflow), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1",
        ]

    server, url = start_server(argv, root / "server.log", "/health", timeout=180, env=env)  # slow on busy CPUs
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening, for 'server unreachable' tests."""
    return free_port()

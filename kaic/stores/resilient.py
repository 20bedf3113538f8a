"""Surviving an object-store outage: retries with backoff, and rows staged on local disk first.

`RetryingStore` wraps any ObjectStore; a call that fails for a transient reason (connection refused or
reset, timeout, HTTP 5xx) is retried with exponential backoff until ``KAIC_STORE_RETRY_S`` seconds have
passed, then raises :class:`kaic.errors.ServiceUnavailable` (one line, exit 1; never a bad-input 2).
The S3 store is opened lazily, so a step starts even while the store is down.

`Outbox` is a run's local staging area, ``$KAIC_HOME/runs/<run-id>/outbox/<key>``: a step writes its
row shard there first, then publishes it to the store; what could not be published stays there until a
later step of the run or `kaic sync RUN` publishes it (`Outbox.flush`). A row once computed is never lost
to an outage: it is on local disk or in the store.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kaic import env
from kaic.errors import ServiceUnavailable
from kaic.stores import ObjectNotFound, ObjectStore

T = TypeVar("T")
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 5.0


def retry_budget_s() -> float:
    try:
        return max(0.0, float(env.KAIC_STORE_RETRY_S.get() or 60))
    except ValueError:
        return 60.0


def is_transient(exc: BaseException) -> bool:
    """An outage (the store may come back), not an answer: connection errors, timeouts, HTTP 5xx."""
    if isinstance(exc, ObjectNotFound | FileNotFoundError | PermissionError):
        return False
    from kaic.stores.objects import StoreUnreachableError

    if isinstance(exc, ConnectionError | TimeoutError | StoreUnreachableError):
        return True
    try:
        import urllib3
        from minio.error import S3Error, ServerError
    except ImportError:  # pragma: no cover - minio is a dependency
        return False
    if isinstance(exc, urllib3.exceptions.HTTPError | ServerError):
        return True
    return isinstance(exc, S3Error) and exc.code in ("SlowDown", "ServiceUnavailable", "InternalError",
                                                     "RequestTimeout")


def retrying(what: str, fn: Callable[[], T], budget_s: float | None = None,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()``, retried on transient errors with exponential backoff for up to ``budget_s`` seconds."""
    budget = retry_budget_s() if budget_s is None else budget_s
    deadline = time.monotonic() + budget
    delay, attempts = BACKOFF_START_S, 0
    while True:
        attempts += 1
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise ServiceUnavailable(
                    f"{what}: unavailable after {attempts} attempt(s) over {budget:g}s "
                    f"({type(exc).__name__}: {reason})") from None
            sleep(min(delay, left))
            delay = min(delay * 2, BACKOFF_MAX_S)


class RetryingStore:
    """An ObjectStore whose calls survive short outages; opened on first use."""

    def __init__(self, uri: str, source: str, opener: Callable[[], ObjectStore]) -> None:
        self._uri, self._source, self._opener = uri, source, opener
        self._inner: ObjectStore | None = None
        self._down = False

    def __repr__(self) -> str:
        return f"RetryingStore({self._uri!r})"

    def _store(self) -> ObjectStore:
        if self._inner is None:
            self._inner = self._opener()  # retried by the caller's loop (an unreachable endpoint is transient)
        return self._inner

    def _call(self, what: str, fn: Callable[[ObjectStore], T]) -> T:
        """Retried through an outage; once the store was declared down in this process, later calls
        try once (a step with many store calls pays the retry budget once, not per call)."""
        try:
            result = retrying(f"object store {self._uri} ({what})", lambda: fn(self._store()),
                              budget_s=0.0 if self._down else None)
        except ServiceUnavailable:
            self._down = True
            raise
        self._down = False
        return result

    @property
    def base_uri(self) -> str:
        return self._uri.rstrip("/")

    def uri(self, key: str) -> str:
        from kaic.stores.objects import check_key

        return f"{self.base_uri}/{check_key(key)}"

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(f"put {key}", lambda s: s.put_bytes(key, data))

    def get_bytes(self, key: str) -> bytes:
        return self._call(f"get {key}", lambda s: s.get_bytes(key))

    def put_file(self, key: str, path: Path) -> None:
        self._call(f"put {key}", lambda s: s.put_file(key, path))

    def get_file(self, key: str, path: Path) -> None:
        self._call(f"get {key}", lambda s: s.get_file(key, path))

    def exists(self, key: str) -> bool:
        return self._call(f"stat {key}", lambda s: s.exists(key))

    def list(self, prefix: str = "") -> list[str]:
        return self._call(f"list {prefix}", lambda s: s.list(prefix))

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", lambda s: s.delete(key))

    def __getattr__(self, name: str) -> Any:  # e.g. FileStore.root for callers that need it
        return getattr(self._store(), name)


def open_retrying(uri: str, source: str) -> ObjectStore:
    """The store at ``uri`` behind retries. A malformed URI fails at once (ConfigError); a file:// store
    is opened now (a local folder has no outage); an s3:// store on first use."""
    from kaic.stores.objects import open_store, parse_uri

    parsed = parse_uri(uri, source)
    if parsed.scheme == "file":
        return open_store(uri, source)
    return RetryingStore(uri, source, lambda: open_store(uri, source))


class Outbox:
    """A run's row shards on local disk until the store has them."""

    def __init__(self, home: Path, run_id: str) -> None:
        from kaic.stores.objects import check_key

        self.root = home / "runs" / check_key(run_id) / "outbox"

    def path(self, key: str) -> Path:
        from kaic.stores.objects import check_key

        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> Path:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def pending(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def publish(self, store: ObjectStore, key: str) -> str:
        """Put one staged object into the store (retried), then drop the local copy; its store URI."""
        path = self.path(key)
        store.put_bytes(key, path.read_bytes())
        path.unlink()
        return store.uri(key)

    def flush(self, store: ObjectStore) -> list[str]:
        """Publish everything pending; raises ServiceUnavailable (the rest stays) if the store is down."""
        done = [self.publish(store, key) for key in self.pending()]
        for folder in sorted((p for p in self.root.rglob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only empty ones go; the outbox itself stays as the marker it was used
        return done

"""Object stores behind one interface: `file:///PATH` (a folder) and `s3://BUCKET[/PREFIX]` (MinIO client).

`open_store(uri, source)` is the only constructor callers need; `source` names where the URI came from
(a flag, an env var, a profile field) so a bad value fails with a one-line ConfigError naming both.
S3 endpoint and credentials come only from kaic.env (environment), never from a URI or flag, and are
never printed. Puts are atomic: readers see a whole object or none (file: temp file + os.replace; S3: one
PUT, or a multipart upload that becomes visible only when completed).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kaic import env
from kaic.errors import ConfigError
from kaic.stores import ObjectNotFound, ObjectStore

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

URI_HELP = "expected file:///PATH or s3://BUCKET[/PREFIX]"
TMP_PREFIX = ".kaic-tmp-"  # in-flight files: hidden from list() and from pyarrow datasets (leading '.')
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class InvalidKeyError(ConfigError, ValueError):
    """An object key that could escape its store or is not a plain relative path (usually from a run id)."""


class StoreUnreachableError(ConfigError):
    """The S3 endpoint did not answer when the store was opened (a RetryingStore retries it)."""


def check_key(key: str, *, allow_empty: bool = False) -> str:
    """Keys are relative '/'-separated paths: no leading '/', no '.', '..' or empty segments, no '\\'."""
    if key == "" and allow_empty:
        return key
    parts = key.split("/")
    if (not key or key.startswith("/") or "\\" in key or "\x00" in key
            or any(p in ("", ".", "..") for p in parts)):
        raise InvalidKeyError(f"object key {key!r}: not a plain relative path (no '..', no leading /)")
    return key


def _check_prefix(prefix: str) -> str:
    """A list() prefix: a key, optionally ending in '/', or empty."""
    if prefix == "":
        return prefix
    check_key(prefix.rstrip("/") or "/")
    return prefix


# --- file:// ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStore:
    """Objects as files under `root`. Writes go to a hidden temp file in the same folder, then os.replace."""

    root: Path

    @property
    def base_uri(self) -> str:
        return f"file://{self.root}"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{check_key(key)}"

    @contextlib.contextmanager
    def _atomic(self, key: str) -> Iterator[Path]:
        """Yields a temp path next to the target; on success it replaces the target, else it is removed."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{target.name}")
        try:
            yield tmp
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)  # the data is on disk before the name points at it
            finally:
                os.close(fd)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._atomic(key) as tmp:
            tmp.write_bytes(data)

    def put_file(self, key: str, path: Path) -> None:
        with self._atomic(key) as tmp:
            shutil.copyfile(path, tmp)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(self.uri(key)) from None

    def get_file(self, key: str, path: Path) -> None:
        src = self.path(key)
        if not src.is_file():
            raise ObjectNotFound(self.uri(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{path.name}")
        try:
            shutil.copyfile(src, tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        _check_prefix(prefix)
        # Walk only the deepest folder the prefix names; then match the prefix as a string (S3 semantics).
        folder = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not folder.is_dir():
            return []
        keys = []
        for dirpath, _dirs, files in os.walk(folder):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                if name.startswith(TMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()


# --- s3:// ------------------------------------------------------------------------------------------


class S3Store:
    """Objects in `bucket` under `prefix`, through the MinIO client (any S3-compatible endpoint)."""

    def __init__(self, bucket: str, prefix: str, client: Any, endpoint: str) -> None:
        self.bucket, self.prefix, self._client, self.endpoint = bucket, prefix.strip("/"), client, endpoint

    def __repr__(self) -> str:  # the client holds credentials: never show it
        return f"S3Store({self.base_uri!r}, endpoint={self.endpoint!r})"

    @property
    def base_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{check_key(key)}"

    def put_bytes(self, key: str, data: bytes) -> None:
        self._client.put_object(self.bucket, self._name(key), io.BytesIO(data), len(data))

    def put_file(self, key: str, path: Path) -> None:
        self._client.fput_object(self.bucket, self._name(key), str(path))

    def get_bytes(self, key: str) -> bytes:
        from minio.error import S3Error

        try:
            resp = self._client.get_object(self.bucket, self._name(key))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NotFound"):
                raise ObjectNotFound(self.uri(key)) from None
            raise
        try:
            return bytes(resp.read())
        finally:
            resp.close()
            resp.release_conn()

    def get_file(self, key: str, path: Path) -> None:
        from minio.error import S3Error

        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._client.fget_object(self.bucket, self._name(key), str(path))  # writes a temp, then renames
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NotFound"):
                raise ObjectNotFound(self.uri(key)) from None
            raise

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self._client.stat_object(self.bucket, self._name(key))
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NotFound", "NoSuchObject"):
                return False
            raise

    def list(self, prefix: str = "") -> list[str]:
        _check_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        objs = self._client.list_objects(self.bucket, prefix=base + prefix, recursive=True)
        return sorted(o.object_name[len(base):] for o in objs if not o.is_dir)

    def delete(self, key: str) -> None:
        self._client.remove_object(self.bucket, self._name(key))  # S3 DELETE is idempotent


# --- opening a store from a URI ---------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedURI:
    scheme: str  # "file" or "s3"
    path: Path | None = None  # file
    bucket: str = ""  # s3
    prefix: str = ""  # s3


def redact(uri: str) -> str:
    """A URI fit to print: any user:password@ part replaced by ***@."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/@]*@", r"\1***@", uri)


def parse_uri(uri: str, source: str) -> ParsedURI:
    """file:///abs, a bare path (relative to the working directory), or s3://bucket[/prefix]."""

    def bad(why: str = URI_HELP) -> ConfigError:
        return ConfigError(f"{source}: bad object-store URI {redact(uri)!r} ({why})")

    if not uri or not uri.strip():
        raise bad()
    if "://" not in uri:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", uri) and not Path(uri).exists():
            raise bad()  # 'ftp:x' style: a scheme without '//'
        return ParsedURI("file", path=Path(uri).expanduser().resolve())
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/") or parts.query:
            raise bad("a file URI needs an absolute path: file:///PATH")
        segments = parts.path.split("/")
        if ".." in segments:  # file:///base/../../etc/x: the path resolves outside the folder it names
            base = "/".join(segments[: segments.index("..")]) or "/"
            raise bad(f"'..' in the path resolves to {Path(parts.path).resolve()}, outside {base}")
        return ParsedURI("file", path=Path(parts.path).resolve())
    if parts.scheme == "s3":
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if "@" in bucket or parts.query:
            raise bad("no credentials or query in the URI; credentials come from KAIC_S3_* variables")
        if not bucket:
            raise bad("no bucket: s3://BUCKET[/PREFIX]")
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise bad(f"bucket name {bucket!r} is not a valid S3 bucket name")
        if prefix:
            try:
                check_key(prefix)
            except InvalidKeyError:
                raise bad(f"prefix {prefix!r} has '..' or empty segments") from None
        return ParsedURI("s3", bucket=bucket, prefix=prefix)
    raise bad()


def open_store(uri: str, source: str, create: bool = True) -> ObjectStore:
    """The store a URI names. file:// folders are created (unless ``create`` is False: a reader on a
    store that does not exist yet sees an empty one and writes nothing); for s3:// the bucket must exist."""
    parsed = parse_uri(uri, source)
    if parsed.scheme == "file":
        assert parsed.path is not None
        if not create and not parsed.path.exists():
            return FileStore(parsed.path)
        if parsed.path.exists() and not parsed.path.is_dir():
            raise ConfigError(f"{source}: object store {uri!r}: {parsed.path} is a file, not a folder")
        try:
            parsed.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise ConfigError(f"{source}: object store {uri!r}: cannot create it ({why})") from None
        if not os.access(parsed.path, os.W_OK | os.X_OK):
            raise ConfigError(f"{source}: object store {uri!r}: folder {parsed.path} is not writable")
        return FileStore(parsed.path)
    client, endpoint = s3_client()
    _check_bucket(client, parsed.bucket, endpoint, uri, source)
    return S3Store(parsed.bucket, parsed.prefix, client, endpoint)


@dataclass(frozen=True)
class S3Endpoint:
    host: str  # host[:port]
    secure: bool

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}"


def s3_endpoint(settings: env.S3Settings) -> S3Endpoint:
    """KAIC_S3_ENDPOINT as host and TLS flag; AWS S3 when unset."""
    if not settings.endpoint:
        return S3Endpoint("s3.amazonaws.com", True)
    parts = urlsplit(settings.endpoint if "://" in settings.endpoint else f"https://{settings.endpoint}")
    if parts.scheme not in ("http", "https") or parts.netloc in ("", "@") or "@" in parts.netloc \
            or parts.path.strip("/"):
        raise ConfigError(
            f"{env.KAIC_S3_ENDPOINT.name}: bad S3 endpoint {redact(settings.endpoint)!r} (expected http(s)://HOST[:PORT])"
        )
    return S3Endpoint(parts.netloc, parts.scheme == "https")


def s3_client() -> tuple[Any, str]:
    """A MinIO client from the environment's S3 settings, with short connect timeouts and few retries."""
    import urllib3
    from minio import Minio

    settings = env.s3_settings()
    endpoint = s3_endpoint(settings)
    try:
        read_s = float(env.KAIC_S3_TIMEOUT_S.get() or 120)
    except ValueError:
        raise ConfigError(f"KAIC_S3_TIMEOUT_S {env.KAIC_S3_TIMEOUT_S.get()!r}: not a number of seconds") from None
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(5.0, read_s), read=read_s),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        maxsize=10,
    )
    client = Minio(
        endpoint.host, access_key=settings.access_key, secret_key=settings.secret_key,
        secure=endpoint.secure, region=settings.region, http_client=http,
    )
    return client, endpoint.url


def _check_bucket(client: Any, bucket: str, endpoint: str, uri: str, source: str) -> None:
    from minio.error import S3Error

    try:
        found = client.bucket_exists(bucket)
    except S3Error as exc:
        raise ConfigError(f"{source}: object store {uri!r}: S3 at {endpoint} refused: {exc.code}") from None
    except Exception as exc:  # urllib3 errors: unreachable endpoint, TLS, DNS
        raise StoreUnreachableError(
            f"{source}: object store {uri!r}: S3 endpoint {endpoint} unreachable ({type(exc).__name__})"
        ) from None
    if not found:
        raise ConfigError(f"{source}: object store {uri!r}: bucket {bucket!r} does not exist at {endpoint}")


def arrow_filesystem(uri: str, source: str) -> tuple[FileSystem, str]:
    """A pyarrow filesystem and the path inside it for a store URI (for datasets read with pyarrow)."""
    from pyarrow import fs

    parsed = parse_uri(uri, source)
    if parsed.scheme == "file":
        assert parsed.path is not None
        return fs.LocalFileSystem(), str(parsed.path)
    settings = env.s3_settings()
    endpoint = s3_endpoint(settings)
    s3 = fs.S3FileSystem(
        access_key=settings.access_key, secret_key=settings.secret_key, region=settings.region,
        endpoint_override=None if not settings.endpoint else endpoint.host,
        scheme="https" if endpoint.secure else "http", anonymous=not settings.access_key,
        connect_timeout=5, request_timeout=120,
    )
    return s3, f"{parsed.bucket}/{parsed.prefix}".rstrip("/")

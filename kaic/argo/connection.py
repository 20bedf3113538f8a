"""Connecting to an Argo Server: the URL (checked), the bearer token (from the environment only) and
a requests session with a real per-request timeout (Hera's service sets none)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from hera.exceptions import HeraException
from hera.workflows import WorkflowsService

from kaic import env
from kaic.errors import ConfigError

REQUEST_TIMEOUT_S = 30.0
T = TypeVar("T")


class ArgoServerError(Exception):
    """The server could not be reached or answered with an error: exit code 1, one-line message."""


def check_url(url: str, source: str = "--argo-server") -> str:
    """A base URL `http(s)://host[:port][/path]`, normalised with a trailing slash; else ConfigError."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    bad = parts.scheme not in ("http", "https") or not parts.hostname or not port_ok
    if bad or parts.query or parts.fragment:
        raise ConfigError(f"{source} {url!r}: not an Argo Server URL (expected http(s)://host[:port][/path])")
    return url.rstrip("/") + "/"


def argo_token() -> str | None:
    """$KAIC_ARGO_TOKEN, else the contents of the file named by $KAIC_ARGO_TOKEN_FILE, else None.

    A token is one printable line: a newline or control character inside it is refused (without
    printing the token: an HTTP library would put it in its error message)."""
    token = env.KAIC_ARGO_TOKEN.get()
    if token:
        return _checked_token(token.strip(), env.KAIC_ARGO_TOKEN.name)
    path = env.KAIC_ARGO_TOKEN_FILE.get()
    if not path:
        return None
    try:
        text = Path(path).expanduser().read_text(errors="replace").strip()
    except OSError as exc:
        raise ConfigError(f"KAIC_ARGO_TOKEN_FILE {path}: cannot read ({exc.strerror or exc})") from None
    if not text:
        raise ConfigError(f"KAIC_ARGO_TOKEN_FILE {path}: the file is empty")
    return _checked_token(text, f"KAIC_ARGO_TOKEN_FILE {path}")


def _checked_token(token: str, source: str) -> str:
    if any(not ch.isprintable() or ch.isspace() for ch in token):
        raise ConfigError(f"{source}: the token contains whitespace, a newline or a control character "
                          f"(not printed); a bearer token is one line")
    return token


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def check_transport(url: str, token: str | None, insecure_http: bool, source: str = "--argo-server") -> None:
    """A token over plain http goes in clear: refused unless the host is loopback or --insecure-http."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    loopback = host in LOOPBACK_HOSTS or host.startswith("127.")
    if token and parts.scheme == "http" and not loopback and not insecure_http:
        raise ConfigError(f"{source} {url!r}: refusing to send the Argo token in clear over http:// to a "
                          f"non-loopback host; use https://, or --insecure-http to accept the risk")


class _TimeoutSession(requests.Session):
    """Every request gets a timeout unless the caller set one."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_s)
        return super().request(method, url, *args, **kwargs)


def bound_request_timeout(service: WorkflowsService, left_s: float) -> None:
    """Cap the next requests' timeout at the time left before a deadline (at least 1 s)."""
    if isinstance(service.session, _TimeoutSession):
        service.session.timeout_s = max(1.0, min(REQUEST_TIMEOUT_S, left_s))


def connect(url: str, namespace: str, token: str | None, *, verify_ssl: bool = True,
            timeout_s: float = REQUEST_TIMEOUT_S, insecure_http: bool = False) -> WorkflowsService:
    """A WorkflowsService for `url`; nothing is sent until the first call."""
    check_transport(check_url(url), token, insecure_http)
    return WorkflowsService(host=check_url(url), token=token, namespace=namespace, verify_ssl=verify_ssl,
                            session=_TimeoutSession(timeout_s))


def describe(exc: Exception, service: WorkflowsService) -> str:
    """One line for a failed call, without the token (requests never puts headers in its messages)."""
    host = service.host
    if isinstance(exc, requests.exceptions.Timeout):
        return f"Argo Server {host} did not answer in time ({exc.__class__.__name__})"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"Argo Server {host}: TLS error ({str(exc).splitlines()[0][:200]})"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"cannot reach the Argo Server at {host} (connection failed: is the URL right, the server up?)"
    return f"Argo Server {host}: {str(exc).splitlines()[0][:300]}"


@contextmanager
def errors_as_messages(service: WorkflowsService, action: str,
                       allow: tuple[type[HeraException], ...] = ()) -> Iterator[None]:
    """Turn transport and HTTP errors into ConfigError (401/403/400: fix the input) or ArgoServerError;
    the HTTP errors in `allow` (e.g. AlreadyExists) reach the caller unchanged."""
    try:
        yield
    except allow:
        raise
    except HeraException as exc:
        code = getattr(exc, "status_code", None)
        if code in (401, 403):
            raise ConfigError(
                f"{action}: Argo Server {service.host} refused the credentials ({code}); "
                "set KAIC_ARGO_TOKEN or KAIC_ARGO_TOKEN_FILE to a token allowed in this namespace"
            ) from None
        if code == 400:
            raise ConfigError(f"{action}: Argo Server {service.host} rejected the request: {exc}") from None
        raise ArgoServerError(f"{action}: {describe(exc, service)}") from None
    except requests.exceptions.RequestException as exc:
        raise ArgoServerError(f"{action}: {describe(exc, service)}") from None


def call(service: WorkflowsService, action: str, fn: Callable[[], T],
         allow: tuple[type[HeraException], ...] = ()) -> T:
    with errors_as_messages(service, action, allow):
        return fn()

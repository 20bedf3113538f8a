"""A closed-loop HTTP/1.1 load driver for V2 inference: `concurrency` keep-alive connections, each sending
its next request as soon as the previous response is complete (what `wrk -c N -t ...` does).

Built for low client overhead, so that the server, not the driver, is what gets measured:
- one `asyncio.Protocol` per connection (uvloop when available), no coroutine or task per request;
- request bytes (headers and body) precomputed once and cycled;
- responses framed by Content-Length (or chunked terminator) without an HTTP library;
- `time.perf_counter_ns` at write and at the last byte, latencies kept as ints.

Bounded by time (`warmup_s` + `duration_s`, plus `timeout_s` for stragglers) and by count
(`max_requests`); loopback only unless the caller allows a remote host (the cluster path).
Requests that started during warm-up are discarded. A non-2xx status, a timeout or a dropped
connection is an error; errors are counted per request attempted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LevelStats:
    """What one concurrency level measured (latencies of successful requests only)."""

    concurrency: int
    ok: int
    errors: int
    elapsed_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    statuses: dict[int, int] = field(default_factory=dict)  # HTTP status -> count (0: no response)
    total_ok: int = 0  # successful responses including warm-up (what the server saw)

    @property
    def attempted(self) -> int:
        return self.ok + self.errors

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.attempted if self.attempted else 1.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of ascending values, linearly interpolated (numpy's default method)."""
    if not sorted_values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def summarize(
    concurrency: int,
    latencies_ns: Sequence[int],
    errors: int,
    elapsed_s: float,
    statuses: dict[int, int] | None = None,
    total_ok: int | None = None,
) -> LevelStats:
    ms = sorted(v / 1e6 for v in latencies_ns)
    mean = sum(ms) / len(ms) if ms else math.nan
    return LevelStats(
        concurrency,
        len(ms),
        errors,
        elapsed_s,
        percentile(ms, 50),
        percentile(ms, 95),
        percentile(ms, 99),
        mean,
        dict(statuses or {}),
        len(ms) if total_ok is None else total_ok,
    )


def http_request(host: str, port: int, path: str, body: bytes, host_header: str | None = None) -> bytes:
    """A complete keep-alive POST of a JSON body, as bytes on the wire."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host_header or f'{host}:{port}'}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("ascii") + body


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Run:
    """Shared state of one level: the clock, the bounds and the tallies."""

    def __init__(
        self,
        requests: Sequence[bytes],
        measure_from_ns: int,
        stop_at_ns: int,
        max_requests: int,
        timeout_ns: int,
    ) -> None:
        self.requests = requests
        self.measure_from_ns = measure_from_ns
        self.stop_at_ns = stop_at_ns
        self.max_requests = max_requests
        self.timeout_ns = timeout_ns
        self.started = 0  # measured requests started
        self.latencies: list[int] = []
        self.errors = 0
        self.statuses: dict[int, int] = {}
        self.last_done_ns = measure_from_ns
        self.all_ok = 0

    def may_start(self, now: int) -> bool:
        return now < self.stop_at_ns and self.started < self.max_requests

    def done(self, began: int, now: int, status: int) -> None:
        if 200 <= status < 300:
            self.all_ok += 1
        if began < self.measure_from_ns:
            return  # warm-up
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            self.latencies.append(now - began)
        else:
            self.errors += 1
        self.last_done_ns = max(self.last_done_ns, now)


class _Conn(asyncio.Protocol):
    """One keep-alive connection running requests back to back."""

    def __init__(self, run: _Run, offset: int, finished: Callable[[_Conn], None]) -> None:
        self.run = run
        self.i = offset
        self.finished = finished
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1  # total bytes of the current response once its headers are parsed
        self.status = 0
        self.chunked = False
        self.began = 0  # perf_counter_ns of the in-flight request; 0 when idle
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        now = time.perf_counter_ns()
        if not self.run.may_start(now) or self.transport is None:
            self.stop()
            return
        if now >= self.run.measure_from_ns:
            self.run.started += 1
        reqs = self.run.requests
        self.began = now
        self.transport.write(reqs[self.i % len(reqs)])
        self.i += 1

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while self.began:
            if self.need < 0 and not self._parse_head():
                return
            if self.chunked:
                end = buf.find(b"\r\n0\r\n\r\n")
                if end < 0:
                    return
                self.need = end + 7
            if len(buf) < self.need:
                return
            del buf[: self.need]
            now = time.perf_counter_ns()
            self.run.done(self.began, now, self.status)
            self.began, self.need, self.chunked = 0, -1, False
            self.send()

    def _parse_head(self) -> bool:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(buf[:end]).lower()
        try:
            self.status = int(head[9:12])
        except ValueError:
            self.status = 0
        i = head.find(b"\r\ncontent-length:")
        if i >= 0:
            j = head.find(b"\r\n", i + 2)
            self.need = end + 4 + int(head[i + 17 : j if j >= 0 else len(head)])
        elif b"transfer-encoding: chunked" in head:
            self.chunked, self.need = True, end + 4
        else:
            self.need = end + 4  # no body (e.g. 204)
        return True

    def expire(self, now: int) -> None:
        """From the ticker: a request older than the timeout is an error, and its connection drops."""
        if self.began and now - self.began > self.run.timeout_ns:
            self.run.done(self.began, now, 0)
            self.began = 0
            if self.transport is not None:
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.began:
            self.run.done(self.began, time.perf_counter_ns(), 0)
            self.began = 0
        self.transport = None
        self.stop()

    def stop(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
            self.finished(self)


async def _drive(
    host: str,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    max_requests: int,
    timeout_s: float,
) -> LevelStats:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter_ns()
    measure_from = t0 + int(warmup_s * 1e9)
    run = _Run(
        requests, measure_from, measure_from + int(duration_s * 1e9), max_requests, int(timeout_s * 1e9)
    )
    conns: set[_Conn] = set()
    all_done = loop.create_future()

    def finished(c: _Conn) -> None:
        conns.discard(c)
        if c.run.may_start(time.perf_counter_ns()):
            loop.call_later(0.01, lambda: loop.create_task(connect(c.i)))  # dropped early: reconnect
        elif not conns and not all_done.done():
            all_done.set_result(None)

    async def connect(offset: int) -> None:
        conn = _Conn(run, offset, finished)
        conns.add(conn)
        try:
            await loop.create_connection(lambda: conn, host, port)
        except OSError:
            now = time.perf_counter_ns()
            run.done(now, now, 0)  # a refused attempt is an error (when measured)
            conn.stop()

    def tick() -> None:
        now = time.perf_counter_ns()
        for c in list(conns):
            c.expire(now)
        if not all_done.done():
            loop.call_later(0.1, tick)

    tick()
    for k in range(concurrency):
        await connect(k * 7919)  # spread connections over the request bodies
    hard_stop = warmup_s + duration_s + timeout_s + 1.0
    try:
        await asyncio.wait_for(asyncio.shield(all_done), hard_stop)
    except TimeoutError:
        for c in list(conns):
            c.expire(time.perf_counter_ns() + run.timeout_ns + 1)
    elapsed = (run.last_done_ns - measure_from) / 1e9
    return summarize(concurrency, run.latencies, run.errors, elapsed, run.statuses, run.all_ok)


def drive(
    host: str,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.0,
    max_requests: int = 10_000_000,
    timeout_s: float = 10.0,
    allow_remote: bool = False,
) -> LevelStats:
    """Run one concurrency level to completion and summarize it (blocking; own event loop)."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"load target {host!r} is not a loopback address (pass allow_remote for a cluster)")
    if concurrency < 1 or duration_s <= 0 or not requests:
        raise ValueError("need concurrency >= 1, duration_s > 0 and at least one request")
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # uvloop comes with kserve; plain asyncio works too, a little slower
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(
            _drive(host, port, requests, concurrency, warmup_s, duration_s, max_requests, timeout_s)
        )

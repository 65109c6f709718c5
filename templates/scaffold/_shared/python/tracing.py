"""Following one request: W3C trace context (https://www.w3.org/TR/trace-context/).

(Named tracing, not trace: that is a module of Python's own.)

server.py serves each request in the trace of its traceparent header (or a
new one) and logs a "request" line with its trace_id when the trace is
sampled or the answer is a 5xx; every line the Logger writes while the
request is handled carries trace_id too, so `skiff logs --trace ID` finds
them. A trace that comes keeps its sampled flag; of those started here at
most TRACES_PER_SECOND a second are sampled (a line for every request is a
cost of its own under load). Call dependencies with urlopen (it adds
the trace's headers; dependency_url gives their <NAME>_URL) and send events
to K_SINK with emit_event: both carry the trace on as the traceparent header.

Standard library only. Spans are not exported over OTLP: Debian has no
python3-opentelemetry package, so the header is propagated and logged only.
"""

import contextvars
import json
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_current = contextvars.ContextVar("trace", default=None)


@dataclass(frozen=True)
class Trace:
    """The trace a request belongs to, and this workload's span of it."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits: the parent of the calls made in it
    parent_id: str = ""  # the caller's span; "" when the trace started here
    flags: str = "01"  # 01: sampled
    state: str = ""  # the vendors' tracestate

    @property
    def sampled(self):
        """Whether the trace is sampled: its hops log a line for it."""
        return int(self.flags, 16) & 1 == 1

    def traceparent(self):
        """The header value that makes this span the parent."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def headers(self):
        """The headers that carry this trace on."""
        h = {"traceparent": self.traceparent()}
        if self.state:
            h["tracestate"] = self.state
        return h


TRACES_PER_SECOND = 20


class Sampler:
    """Allows TRACES_PER_SECOND sampled traces a second: a token bucket of as
    many tokens that fills at that rate. now is in seconds."""

    def __init__(self, now=time.monotonic):
        self._now = now
        self._lock = threading.Lock()
        self._tokens = TRACES_PER_SECOND
        self._last = now()

    def __call__(self):
        with self._lock:
            t = self._now()
            if t > self._last:
                self._tokens = min(TRACES_PER_SECOND, self._tokens + (t - self._last) * TRACES_PER_SECOND)
                self._last = t
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


_sample_new = Sampler()


def continue_trace(headers, sample=None):
    """Reads the traceparent and tracestate of headers (anything with a
    case-insensitive get, or a dict of lower-case names); without a valid
    traceparent it starts a trace, sampled if sample() says so. Either way
    this hop gets a span id of its own."""
    m = _TRACEPARENT.fullmatch(headers.get("traceparent") or "")
    if not m or m[1] == "ff" or (m[1] == "00" and m[5]) or not m[2].strip("0") or not m[3].strip("0"):
        flags = "01" if (sample or _sample_new)() else "00"
        return Trace(trace_id=secrets.token_hex(16), span_id=secrets.token_hex(8), flags=flags)
    # A later version: only the sampled bit means the same.
    flags = m[4] if m[1] == "00" else f"0{int(m[4], 16) & 1}"
    return Trace(m[2], secrets.token_hex(8), m[3], flags, headers.get("tracestate") or "")


def current_trace():
    """The trace of the request being handled, or None."""
    return _current.get()


def set_trace(trace):
    """Makes trace the current one; returns a token for reset_trace."""
    return _current.set(trace)


def reset_trace(token):
    _current.reset(token)


def urlopen(url, data=None, timeout=30, headers=None, method=None):
    """urllib.request.urlopen with the current trace's headers added."""
    req = url if isinstance(url, urllib.request.Request) else urllib.request.Request(url, data=data, method=method)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    trace = current_trace()
    if trace:
        for name, value in trace.headers().items():
            req.add_header(name, value)
    return urllib.request.urlopen(req, timeout=timeout)


def dependency_url(name, env=None):
    """The base URL of the workload name this one depends on (dependsOn in
    skiff.yaml): its <NAME>_URL variable."""
    env = os.environ if env is None else env
    key = name.upper().replace("-", "_") + "_URL"
    if not env.get(key):
        raise KeyError(f"{key} is not set: add {name} to dependsOn in skiff.yaml")
    return env[key].rstrip("/")


def emit_event(type, source, data=None, sink=None):
    """Sends a CloudEvent of type from source with JSON data to K_SINK, in
    binary mode and in the current trace; returns once the relay stored it."""
    sink = os.environ.get("K_SINK", "") if sink is None else sink
    if not sink:
        raise RuntimeError("K_SINK is not set: the project has no events in skiff.yaml")
    headers = {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": source,
        "ce-type": type,
        "ce-time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "Content-Type": "application/json",
    }
    try:
        with urlopen(sink, data=json.dumps(data).encode(), headers=headers, method="POST", timeout=30):
            pass
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"sending a {type} event: K_SINK answered {err.code}: {err.read(512).decode(errors='replace')}") from None

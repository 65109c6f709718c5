"""The plumbing every workload needs: configuration from the environment,
JSON logs on stdout, liveness and readiness probes and graceful shutdown,
and every request in its W3C trace (tracing.py).

Standard library only: http.server's ThreadingHTTPServer.
"""

import json
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tracing import continue_trace, current_trace, reset_trace, set_trace

LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40}
MAX_BODY = 1 << 20


@dataclass
class Config:
    port: int
    log_level: str = "INFO"
    shutdown_timeout: float = 10.0  # seconds


def parse_duration(name, value):
    """Reads "10", "10s" or "500ms" as seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", value.strip())
    if not m:
        raise ValueError(f"{name}={value} is not a duration such as 10s or 500ms")
    return float(m[1]) / 1000 if m[2] == "ms" else float(m[1])


def load_config(env, default_port):
    """Reads PORT, LOG_LEVEL and SHUTDOWN_TIMEOUT from env."""
    cfg = Config(port=default_port)
    if env.get("PORT"):
        try:
            cfg.port = int(env["PORT"])
        except ValueError:
            raise ValueError(f"PORT={env['PORT']} is not a port number") from None
        if not 0 <= cfg.port <= 65535:
            raise ValueError(f"PORT={env['PORT']} is not a port number")
    if env.get("LOG_LEVEL"):
        level = env["LOG_LEVEL"].upper()
        if level == "WARNING":
            level = "WARN"
        if level not in LEVELS:
            raise ValueError(f"LOG_LEVEL={env['LOG_LEVEL']} is not one of debug, info, warn, error")
        cfg.log_level = level
    if env.get("SHUTDOWN_TIMEOUT"):
        cfg.shutdown_timeout = parse_duration("SHUTDOWN_TIMEOUT", env["SHUTDOWN_TIMEOUT"])
    return cfg


class Logger:
    """Writes one JSON object per line: time, level, msg, then the logger's
    fields, trace_id while a request is handled, and the call's attributes."""

    def __init__(self, level="INFO", stream=None, **fields):
        self.min = LEVELS[level]
        self.stream = stream if stream is not None else sys.stdout
        self.fields = fields
        self._lock = threading.Lock()

    def log(self, level, msg, **attrs):
        if LEVELS[level] < self.min:
            return
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        trace = current_trace()
        traced = {"trace_id": trace.trace_id} if trace else {}
        line = json.dumps({"time": now, "level": level, "msg": msg, **self.fields, **traced, **attrs}, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def debug(self, msg, **attrs):
        self.log("DEBUG", msg, **attrs)

    def info(self, msg, **attrs):
        self.log("INFO", msg, **attrs)

    def warn(self, msg, **attrs):
        self.log("WARN", msg, **attrs)

    def error(self, msg, **attrs):
        self.log("ERROR", msg, **attrs)


class HTTPError(Exception):
    """An error that maps to an HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    method: str
    path: str
    query: dict  # name -> list of values
    headers: dict  # lower-case name -> value
    body: bytes = b""


@dataclass
class Response:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b""


def json_response(status, value, headers=None):
    return Response(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(value).encode())


def read_json(req):
    """Decodes a JSON request body; HTTPError(400) when it is not JSON."""
    try:
        return json.loads(req.body or b"null")
    except ValueError:
        raise HTTPError(400, "the body must be JSON") from None


class _HTTPServer(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5. A wake from zero hands the
    # pod every request held meanwhile at once: the kernel drops the
    # connections beyond the backlog, and each dropped one waits a second
    # or more for its SYN to be sent again. (The kernel caps the backlog
    # at net.core.somaxconn.)
    request_queue_size = 1024
    daemon_threads = True  # drain() waits for requests, not the interpreter


class Server:
    """Serves app (a function from Request to Response), each request in its
    trace and logged with its trace_id, and GET /healthz (liveness) and
    GET /readyz (readiness, 503 once shutdown began), unlogged."""

    def __init__(self, app, logger, host="", port=0):
        self.app = app
        self.logger = logger
        self.ready = threading.Event()
        self._inflight = 0
        self._idle = threading.Condition()
        self.httpd = _HTTPServer((host, port), self._handler_class())

    @property
    def port(self):
        return self.httpd.server_address[1]

    def serve_forever(self):
        """Serves until begin_shutdown is called from another thread."""
        self.ready.set()
        self.httpd.serve_forever(poll_interval=0.1)

    def begin_shutdown(self):
        """Reports not ready and stops accepting connections (from any thread
        but the serving one)."""
        self.ready.clear()
        self.httpd.shutdown()

    def drain(self, timeout):
        """Waits up to timeout seconds for in-flight requests, then closes."""
        with self._idle:
            done = self._idle.wait_for(lambda: self._inflight == 0, timeout)
        self.httpd.server_close()
        return done

    def _handler_class(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "skiff-python"

            def log_message(self, format, *args):  # http.server's own messages, at debug level
                srv.logger.debug("http.server", line=format % args, remote=self.client_address[0])

            def log_request(self, code="-", size="-"):  # _serve logs each request with its trace
                pass

            def _serve(self):
                with srv._idle:
                    srv._inflight += 1
                path = urlsplit(self.path).path
                probe = self.command in ("GET", "HEAD") and path in ("/healthz", "/readyz")
                trace = None if probe else continue_trace(self.headers)
                token = None if probe else set_trace(trace)
                start = time.monotonic()
                status = 500
                try:
                    resp = self._handle()
                    status = resp.status
                    self._respond(resp)
                finally:
                    if token is not None:
                        # Sampled traces and failures only (tracing.py).
                        if trace.sampled or status >= 500:
                            duration_ms = round((time.monotonic() - start) * 1000, 3)
                            srv.logger.info("request", method=self.command, path=path, status=status, duration_ms=duration_ms)
                        reset_trace(token)
                    with srv._idle:
                        srv._inflight -= 1
                        srv._idle.notify_all()

            def _handle(self):
                url = urlsplit(self.path)
                if self.command in ("GET", "HEAD"):
                    if url.path == "/healthz":
                        return json_response(200, {"status": "ok"})
                    if url.path == "/readyz":
                        ready = srv.ready.is_set()
                        return json_response(200 if ready else 503, {"status": "ready" if ready else "shutting down"})
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    if length > MAX_BODY:
                        raise HTTPError(413, "request body too large")
                    req = Request(
                        method=self.command,
                        path=url.path,
                        query=parse_qs(url.query),
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=self.rfile.read(length) if length > 0 else b"",
                    )
                    return srv.app(req)
                except HTTPError as err:
                    return json_response(err.status, {"error": str(err)})
                except Exception as err:  # noqa: BLE001 - one bad request must not stop the server
                    srv.logger.error("request failed", method=self.command, path=url.path, error=repr(err))
                    return json_response(500, {"error": "internal error"})

            def _respond(self, resp):
                self.send_response(resp.status)
                for name, value in resp.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

        return Handler


def run(app, cfg, logger):
    """Serves app on cfg.port; on SIGTERM or SIGINT stops accepting
    connections, drains in-flight requests and returns 0."""
    srv = Server(app, logger, port=cfg.port)

    def on_signal(signum, _frame):
        logger.info("shutting down", signal=signal.Signals(signum).name, timeout=cfg.shutdown_timeout)
        srv.ready.clear()
        # shutdown() waits for serve_forever, which runs in this thread.
        threading.Thread(target=srv.begin_shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logger.info("listening", port=srv.port)
    srv.serve_forever()
    if not srv.drain(cfg.shutdown_timeout):
        logger.warn("shutdown timeout reached with requests still in flight")
    logger.info("stopped")
    return 0

import io
import json
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from server import Logger, Response
from test_server import RunningServer, fetch
from tracing import TRACES_PER_SECOND, Sampler, continue_trace, current_trace, dependency_url, emit_event, urlopen

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


class Recorder:
    """An HTTP server that keeps the headers and body of each request and
    answers status, for the length of a with block."""

    def __init__(self, status=202):
        self.got = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class ContinueTraceTest(unittest.TestCase):
    def test_continues_a_valid_traceparent(self):
        t = continue_trace({"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "congo=t61rcWkgMzE"})
        self.assertEqual((t.trace_id, t.parent_id, t.flags, t.state), (TRACE, SPAN, "01", "congo=t61rcWkgMzE"))
        self.assertRegex(t.span_id, r"^[0-9a-f]{16}$")
        self.assertNotEqual(t.span_id, SPAN)
        self.assertEqual(t.traceparent(), f"00-{TRACE}-{t.span_id}-01")
        self.assertEqual(continue_trace({"traceparent": f"cc-{TRACE}-{SPAN}-03-later"}).flags, "01")

    def test_starts_a_trace_without_a_valid_one(self):
        for bad in ["", f"00-{TRACE}-{SPAN}", f"00-{TRACE.upper()}-{SPAN}-01", f"ff-{TRACE}-{SPAN}-01",
                    f"00-{'0' * 32}-{SPAN}-01", f"00-{TRACE}-{SPAN}-01-extra"]:
            t = continue_trace({"traceparent": bad, "tracestate": "a=b"})
            self.assertNotEqual(t.trace_id, TRACE, bad)
            self.assertRegex(t.trace_id, r"^[0-9a-f]{32}$")
            self.assertEqual((t.parent_id, t.state), ("", ""), bad)

    def test_sampled_flag(self):
        # A trace that comes keeps its flag; one started here is sampled
        # when the sampler says so.
        self.assertFalse(continue_trace({"traceparent": f"00-{TRACE}-{SPAN}-00"}, lambda: True).sampled)
        self.assertEqual(continue_trace({}, lambda: False).flags, "00")
        self.assertTrue(continue_trace({}, lambda: True).sampled)

    def test_sampler_allows_traces_per_second(self):
        now = [1000.0]
        sample = Sampler(lambda: now[0])

        def count(n):
            return sum(1 for _ in range(n) if sample())

        self.assertEqual(count(TRACES_PER_SECOND + 5), TRACES_PER_SECOND)
        now[0] += 1 / TRACES_PER_SECOND + 0.001  # one trace's time
        self.assertEqual(count(5), 1)
        now[0] += 3600  # a quiet hour fills the bucket, no more
        self.assertEqual(count(TRACES_PER_SECOND + 5), TRACES_PER_SECOND)

    def test_dependency_url(self):
        self.assertEqual(dependency_url("greeter-api", {"GREETER_API_URL": "http://greeter-api:8080/"}), "http://greeter-api:8080")
        with self.assertRaisesRegex(KeyError, "OTHER_URL is not set"):
            dependency_url("other", {})


class TracedRequestTest(unittest.TestCase):
    def test_a_request_is_handled_logged_and_called_on_in_its_trace(self):
        out = io.StringIO()
        logger = Logger(stream=out, service="test")
        seen = {}
        with Recorder(200) as dep, Recorder(202) as sink:
            def app(req):
                seen["trace"] = current_trace()
                logger.info("calling on")
                with urlopen(dependency_url("dep", {"DEP_URL": dep.url}) + "/x"):
                    pass
                emit_event("com.example.done", "/test", {"n": 1}, sink=sink.url)
                return Response(201)

            with RunningServer(app, logger) as srv:
                status, _, _ = fetch(srv.base + "/items", data=b"{}", method="POST", headers={"traceparent": f"00-{TRACE}-{SPAN}-01"})
                fetch(srv.base + "/healthz")
        self.assertEqual(status, 201)
        span = seen["trace"]
        self.assertEqual(span.trace_id, TRACE)
        self.assertEqual(dep.got[0][0]["traceparent"], f"00-{TRACE}-{span.span_id}-01")
        headers, body = sink.got[0]
        self.assertEqual(headers["traceparent"], f"00-{TRACE}-{span.span_id}-01")
        self.assertEqual((headers["ce-type"], headers["ce-source"], headers["ce-specversion"]), ("com.example.done", "/test", "1.0"))
        self.assertEqual(json.loads(body), {"n": 1})
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        self.assertEqual([rec["msg"] for rec in lines if rec.get("trace_id") == TRACE], ["calling on", "request"])
        request = [rec for rec in lines if rec["msg"] == "request"]
        self.assertEqual(len(request), 1, "the probes are not logged")
        self.assertEqual((request[0]["status"], request[0]["method"], request[0]["path"], request[0]["service"]), (201, "POST", "/items", "test"))

    def test_a_request_is_logged_when_sampled_or_failed(self):
        out = io.StringIO()
        logger = Logger(stream=out)

        def app(req):
            return Response(503 if req.path == "/fail" else 200)

        with RunningServer(app, logger) as srv:
            for path, flags in [("/ok", "00"), ("/fail", "00"), ("/ok", "01")]:
                fetch(srv.base + path, headers={"traceparent": f"00-{TRACE}-{SPAN}-{flags}"})
            srv.stop()
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        # A request's line is written after its answer went out, on the
        # server's thread for it: the next request's may come first.
        self.assertEqual(sorted(f"{rec['path']} {rec['status']}" for rec in lines if rec["msg"] == "request"), ["/fail 503", "/ok 200"])

    def test_emit_event_says_what_k_sink_answered(self):
        with Recorder(503) as sink:
            with self.assertRaisesRegex(RuntimeError, "K_SINK answered 503"):
                emit_event("a.b", "/t", {}, sink=sink.url)
        with self.assertRaisesRegex(RuntimeError, "K_SINK is not set"):
            emit_event("a.b", "/t", {}, sink="")


if __name__ == "__main__":
    unittest.main()

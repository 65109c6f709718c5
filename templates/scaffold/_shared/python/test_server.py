import io
import json
import socket
import threading
import unittest
import urllib.error
import urllib.request

from server import Logger, Response, Server, load_config, parse_duration


def fetch(url, data=None, method=None, headers=None):
    """Returns (status, headers, body) and does not raise on 4xx/5xx."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


class RunningServer:
    """Serves app on a free loopback port for the length of a with block."""

    def __init__(self, app, logger=None):
        self.server = Server(app, logger or Logger(stream=io.StringIO()), host="127.0.0.1", port=0)
        self.base = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        self.server.ready.wait(5)
        return self

    def stop(self, timeout=5):
        self.server.begin_shutdown()
        drained = self.server.drain(timeout)
        self.thread.join(5)
        return drained

    def __exit__(self, *exc):
        if self.thread.is_alive():
            self.stop()


class BacklogTest(unittest.TestCase):
    def test_a_burst_of_connections_waits_in_the_backlog(self):
        # Before it accepts any: a wake from zero releases every held
        # request at once. A connection the backlog has no room for is
        # dropped by the kernel, and its connect does not complete.
        server = Server(lambda req: Response(), Logger(stream=io.StringIO()), host="127.0.0.1", port=0)
        conns = []
        try:
            for _ in range(64):
                conns.append(socket.create_connection(("127.0.0.1", server.port), timeout=0.5))
        finally:
            for c in conns:
                c.close()
            server.httpd.server_close()
        self.assertEqual(len(conns), 64)


class ConfigTest(unittest.TestCase):
    def test_reads_the_environment(self):
        cfg = load_config({"PORT": "9090", "LOG_LEVEL": "debug", "SHUTDOWN_TIMEOUT": "500ms"}, 8080)
        self.assertEqual(cfg.port, 9090)
        self.assertEqual(cfg.log_level, "DEBUG")
        self.assertAlmostEqual(cfg.shutdown_timeout, 0.5)
        self.assertEqual(load_config({}, 8080).port, 8080)
        self.assertEqual(parse_duration("X", "10s"), 10)

    def test_rejects_bad_values(self):
        for env in ({"PORT": "http"}, {"PORT": "70000"}, {"LOG_LEVEL": "loud"}, {"SHUTDOWN_TIMEOUT": "soon"}):
            with self.subTest(env=env), self.assertRaisesRegex(ValueError, next(iter(env))):
                load_config(env, 8080)


class LoggerTest(unittest.TestCase):
    def test_one_json_object_per_line(self):
        out = io.StringIO()
        log = Logger("INFO", stream=out, service="svc")
        log.debug("hidden")
        log.info("hello", n=1)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 1)
        rec = json.loads(lines[0])
        self.assertEqual((rec["level"], rec["msg"], rec["n"], rec["service"]), ("INFO", "hello", 1, "svc"))
        self.assertTrue(rec["time"].endswith("Z"))


class ServerTest(unittest.TestCase):
    def test_health_readiness_and_graceful_shutdown(self):
        started, release = threading.Event(), threading.Event()

        def app(req):
            if req.path == "/slow":
                started.set()
                release.wait(5)
            return Response(200, {}, b"done")

        with RunningServer(app) as running:
            self.assertEqual(fetch(running.base + "/healthz")[0], 200)
            self.assertEqual(fetch(running.base + "/readyz")[0], 200)

            slow = {}
            client = threading.Thread(target=lambda: slow.update(result=fetch(running.base + "/slow")))
            client.start()
            self.assertTrue(started.wait(5))
            stopper = threading.Thread(target=lambda: slow.update(drained=running.stop()))
            stopper.start()
            release.set()
            client.join(5)
            stopper.join(10)
            self.assertEqual(slow["result"][0], 200)
            self.assertEqual(slow["result"][2], b"done")
            self.assertTrue(slow["drained"], "in-flight request was not drained")
            self.assertFalse(running.server.ready.is_set())

    def test_errors_become_500(self):
        def app(req):
            raise RuntimeError("boom")

        out = io.StringIO()
        with RunningServer(app, Logger(stream=out)) as running:
            status, _, body = fetch(running.base + "/")
        self.assertEqual(status, 500)
        self.assertEqual(json.loads(body), {"error": "internal error"})
        self.assertIn('"request failed"', out.getvalue())


if __name__ == "__main__":
    unittest.main()

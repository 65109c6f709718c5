import json
import os
import queue
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from liveconfig import LiveConfig

ENV = {"GREETING": "from env", "SKIFF_CONFIG_MAP": "demo-config", "POD_NAMESPACE": "demo"}
TIMEOUT = 5  # seconds to wait for something the test expects


def no_blank_greeting(values):
    if "GREETING" in values and not values["GREETING"].strip():
        raise ValueError("GREETING must not be blank")


class RecordingLogger:
    """Keeps (level, msg, attrs) and lets a test wait for a message."""

    def __init__(self):
        self.records = []
        self._cond = threading.Condition()

    def _log(self, level, msg, **attrs):
        with self._cond:
            self.records.append((level, msg, attrs))
            self._cond.notify_all()

    def debug(self, msg, **attrs):
        self._log("DEBUG", msg, **attrs)

    def info(self, msg, **attrs):
        self._log("INFO", msg, **attrs)

    def warn(self, msg, **attrs):
        self._log("WARN", msg, **attrs)

    def error(self, msg, **attrs):
        self._log("ERROR", msg, **attrs)

    def named(self, msg):
        with self._cond:
            return [attrs for _, m, attrs in self.records if m == msg]

    def wait_for(self, msg, timeout=TIMEOUT):
        """The attributes of the first record with msg."""
        with self._cond:
            found = self._cond.wait_for(lambda: any(m == msg for _, m, _ in self.records), timeout)
        if not found:
            raise AssertionError(f"no {msg!r} logged; got {self.records}")
        return self.named(msg)[0]


class Watch:
    """One open watch request; the test writes its events."""

    def __init__(self, query, headers):
        self.query = {k: v[0] for k, v in query.items()}
        self.headers = headers
        self.lines = queue.Queue()

    def send(self, type, data=None, version="1", code=None):
        if type == "ERROR":
            obj = {"kind": "Status", "status": "Failure", "code": code, "message": "too old resource version"}
        else:
            obj = {"kind": "ConfigMap", "metadata": {"name": "demo-config", "resourceVersion": version}}
            if data is not None:
                obj["data"] = data
        self.send_raw(json.dumps({"type": type, "object": obj}) + "\n")

    def send_raw(self, text):
        self.lines.put(text.encode())

    def end(self):
        self.lines.put(None)


class FakeAPI:
    """A Kubernetes API server holding one ConfigMap, demo/demo-config: a
    GET answers it (or status), each watch is a chunked stream the test
    writes to through the Watch it takes from next_watch()."""

    def __init__(self, data, version="1"):
        self.status = 200
        self.configmap = (data, version)
        self.gets = queue.Queue()  # the headers of each GET
        self.watches = queue.Queue()  # a Watch per watch request
        self._open = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def next_get(self):
        return self.gets.get(timeout=TIMEOUT)

    def next_watch(self):
        return self.watches.get(timeout=TIMEOUT)

    def close(self):
        for watch in self._open:
            watch.end()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler_class(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def do_GET(self):
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if url.path == "/api/v1/namespaces/demo/configmaps" and query.get("watch") == ["true"]:
                    self._stream(Watch(query, headers))
                elif url.path == "/api/v1/namespaces/demo/configmaps/demo-config":
                    api.gets.put(headers)
                    data, version = api.configmap
                    if api.status == 200:
                        body = {"kind": "ConfigMap", "metadata": {"name": "demo-config", "resourceVersion": version},
                                "data": data}
                    else:
                        body = {"kind": "Status", "code": api.status, "message": "the fake says no"}
                    self._reply(api.status, body)
                else:
                    self._reply(404, {"kind": "Status", "code": 404, "message": f"no {url.path}"})

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, watch):
                api._open.append(watch)
                api.watches.put(watch)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.close_connection = True
                try:
                    self.wfile.flush()
                    while (line := watch.lines.get()) is not None:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client went away

        return Handler


class LiveConfigTest(unittest.TestCase):
    def setUp(self):
        self.log = RecordingLogger()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.token = os.path.join(self.tmp, "token")
        self.write(self.token, "token-1")
        self.dir = os.path.join(self.tmp, "config")
        os.mkdir(self.dir)

    def write(self, path, text):
        # Whole or not at all, as the kubelet swaps the files: the live
        # config's thread never reads a half-written one.
        # (The dot keeps the temporary file out of the config.)
        tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".new")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def fake_api(self, data, version="1"):
        api = FakeAPI(data, version)
        self.addCleanup(api.close)
        return api

    def live_config(self, api=None):
        """A LiveConfig on api (None: no API, files only) and a queue of the
        snapshots its on_change gets."""
        live = LiveConfig(logger=self.log, check=no_blank_greeting, env=ENV, api_url=api.url if api else "",
                          token_file=self.token, directory=self.dir)
        changes = queue.Queue()
        live.on_change(changes.put)
        self.addCleanup(live.stop)
        return live, changes

    def next_change(self, changes):
        return changes.get(timeout=TIMEOUT)

    def test_reads_the_env_until_a_snapshot_arrives(self):
        live, _ = self.live_config(self.fake_api({"GREETING": "Hi"}))
        self.assertEqual(live.get("GREETING", "Hello"), "from env")
        self.assertEqual(live.get("MISSING", "default"), "default")

        off = LiveConfig(env={"GREETING": "plain"})
        off.start()  # no SKIFF_CONFIG_MAP: nothing to follow
        self.assertEqual(off.get("GREETING", "Hello"), "plain")
        off.stop()

    def test_get_then_watch_delivers_changes(self):
        api = self.fake_api({"GREETING": "Hi"}, version="5")
        live, changes = self.live_config(api)
        live.start()
        self.assertEqual(self.next_change(changes), {"GREETING": "Hi"})
        self.assertEqual(live.get("GREETING", "Hello"), "Hi")
        get = api.next_get()
        self.assertEqual((get["authorization"], get["accept"]), ("Bearer token-1", "application/json"))

        watch = api.next_watch()
        self.assertEqual(watch.query, {"fieldSelector": "metadata.name=demo-config", "watch": "true",
                                       "resourceVersion": "5", "allowWatchBookmarks": "true",
                                       "timeoutSeconds": "290"})
        watch.send("MODIFIED", {"GREETING": "Howdy", "COLOR": "blue"}, version="6")
        self.assertEqual(self.next_change(changes), {"GREETING": "Howdy", "COLOR": "blue"})
        self.assertEqual(live.get("GREETING", "Hello"), "Howdy")

        watch.send("MODIFIED", {"COLOR": "blue"}, version="7")
        self.assertEqual(self.next_change(changes), {"COLOR": "blue"})
        self.assertEqual(live.get("GREETING", "Hello"), "Hello", "a removed key is gone, not read from the env")

        updates = self.log.named("config updated")
        self.assertEqual([u["keys"] for u in updates], [["GREETING"], ["COLOR", "GREETING"], ["GREETING"]])
        self.assertEqual(updates[-1]["resourceVersion"], "7")
        self.assertNotIn("Howdy", repr(self.log.records), "values must not be logged")

    def test_a_blank_greeting_is_rejected_and_the_last_good_one_kept(self):
        api = self.fake_api({"GREETING": "Hi"})
        live, changes = self.live_config(api)
        live.start()
        self.next_change(changes)
        watch = api.next_watch()
        watch.send("MODIFIED", {"GREETING": "  "}, version="2")
        rejected = self.log.wait_for("config update rejected")
        self.assertEqual(rejected["reason"], "GREETING must not be blank")
        self.assertEqual(live.get("GREETING", "Hello"), "Hi")

        watch.send("MODIFIED", {"GREETING": "Hey"}, version="3")
        self.assertEqual(self.next_change(changes), {"GREETING": "Hey"})

    def test_survives_a_line_that_is_not_json_and_a_failing_callback(self):
        api = self.fake_api({"GREETING": "Hi"}, version="5")
        live, changes = self.live_config(api)

        def broken(values):
            raise RuntimeError("callback bug")

        live.on_change(broken)
        live.start()
        self.next_change(changes)
        self.log.wait_for("config change callback failed")

        watch = api.next_watch()
        watch.send("BOOKMARK", version="8")
        watch.send_raw("this is not json\n")
        again = api.next_watch()
        self.assertEqual(again.query["resourceVersion"], "8", "the watch resumes from the bookmark")
        again.send("MODIFIED", {"GREETING": "Back"}, version="9")
        self.assertEqual(self.next_change(changes), {"GREETING": "Back"})
        self.assertEqual(live.get("GREETING"), "Back")

    def test_an_expired_watch_lists_again(self):
        api = self.fake_api({"GREETING": "Hi"}, version="5")
        live, changes = self.live_config(api)
        live.start()
        self.next_change(changes)
        api.next_get()
        watch = api.next_watch()

        api.configmap = ({"GREETING": "Yo"}, "20")
        watch.send("ERROR", code=410)
        api.next_get()
        self.assertEqual(self.next_change(changes), {"GREETING": "Yo"})
        self.assertEqual(api.next_watch().query["resourceVersion"], "20")

    def test_falls_back_to_the_files_when_the_api_fails(self):
        self.write(os.path.join(self.dir, "GREETING"), "from files")
        self.write(os.path.join(self.dir, ".hidden"), "no")
        os.mkdir(os.path.join(self.dir, "sub"))
        api = self.fake_api({"GREETING": "from api"})
        api.status = 500
        live, changes = self.live_config(api)
        live.backoff_min = 0.01
        live.start()
        self.assertEqual(self.next_change(changes), {"GREETING": "from files"})
        failed = self.log.wait_for("config watch failed")
        self.assertIn("500", failed["error"])

        for _ in range(3):  # retried, and logged once
            api.next_get()
        self.assertEqual(len(self.log.named("config watch failed")), 1)

        api.status = 200
        self.assertEqual(self.next_change(changes), {"GREETING": "from api"})

    def test_the_files_never_undo_the_api(self):
        # The files lag the API: when the API fails after a change, the
        # older files must not bring the old value back; a later change of
        # the files counts.
        greeting = os.path.join(self.dir, "GREETING")
        self.write(greeting, "Hi")
        api = self.fake_api({"GREETING": "Hi"})
        live, changes = self.live_config(api)
        live.backoff_min = live.backoff_max = 0.01
        live.start()
        self.next_change(changes)
        api.next_get()
        watch = api.next_watch()
        watch.send("MODIFIED", {"GREETING": "New"}, version="2")
        self.assertEqual(self.next_change(changes), {"GREETING": "New"})

        api.status = 503
        watch.send("ERROR", code=500)  # fails: the files are read, then the GET fails
        for _ in range(3):
            api.next_get()
        self.assertEqual(live.get("GREETING"), "New")
        self.write(greeting, "Newer")
        self.assertEqual(self.next_change(changes), {"GREETING": "Newer"})

    def test_without_an_api_polls_the_files(self):
        # The kubelet's layout: KEY -> ..data/KEY, ..data -> a dated folder.
        for name, text in (("..v1", "one"), ("..v2", "two")):
            os.mkdir(os.path.join(self.dir, name))
            self.write(os.path.join(self.dir, name, "GREETING"), text)
        os.symlink("..v1", os.path.join(self.dir, "..data"))
        os.symlink("..data/GREETING", os.path.join(self.dir, "GREETING"))
        live, changes = self.live_config()
        live.poll_interval = 0.02
        live.start()
        self.assertEqual(self.next_change(changes), {"GREETING": "one"})

        os.symlink("..v2", os.path.join(self.dir, "..data_tmp"))
        os.replace(os.path.join(self.dir, "..data_tmp"), os.path.join(self.dir, "..data"))
        self.assertEqual(self.next_change(changes), {"GREETING": "two"})
        self.assertEqual(live.get("GREETING"), "two")

    def test_reads_the_token_for_every_request(self):
        api = self.fake_api({"GREETING": "Hi"})
        live, changes = self.live_config(api)
        live.start()
        self.assertEqual(api.next_get()["authorization"], "Bearer token-1")
        watch = api.next_watch()
        self.assertEqual(watch.headers["authorization"], "Bearer token-1")

        self.write(self.token, "token-2\n")
        watch.end()  # as at timeoutSeconds: watch again
        again = api.next_watch()
        self.assertEqual(again.headers["authorization"], "Bearer token-2")
        self.assertEqual(again.query["resourceVersion"], "1")

    def test_stop_ends_an_open_watch_promptly(self):
        api = self.fake_api({"GREETING": "Hi"})
        live, _ = self.live_config(api)
        live.start()
        api.next_watch()
        start = time.monotonic()
        live.stop()
        self.assertLess(time.monotonic() - start, 2)
        self.assertFalse(live._thread.is_alive())

    def test_stop_interrupts_the_backoff(self):
        api = self.fake_api({})
        api.status = 503
        live, _ = self.live_config(api)
        live.backoff_min = 30
        live.start()
        api.next_get()
        self.log.wait_for("config watch failed")
        start = time.monotonic()
        live.stop()
        self.assertLess(time.monotonic() - start, 2)
        self.assertFalse(live._thread.is_alive())


if __name__ == "__main__":
    unittest.main()

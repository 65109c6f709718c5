import io
import json
import unittest

from api import create_api
from server import Logger
from test_server import RunningServer, fetch


class APITest(unittest.TestCase):
    def setUp(self):
        self.running = RunningServer(create_api("test-svc", Logger(stream=io.StringIO())))
        self.running.__enter__()
        self.addCleanup(self.running.__exit__, None, None, None)
        self.base = self.running.base

    def post(self, path, body):
        return fetch(self.base + path, data=body, method="POST", headers={"Content-Type": "application/json"})

    def test_items_can_be_added_listed_read_and_removed(self):
        self.assertEqual(json.loads(fetch(self.base + "/items")[2]), [])
        status, headers, body = self.post("/items", b'{"name":"apple"}')
        self.assertEqual(status, 201)
        apple = json.loads(body)
        self.assertEqual(apple["name"], "apple")
        self.assertEqual(headers["Location"], f"/items/{apple['id']}")
        self.post("/items", b'{"name":"pear"}')

        items = json.loads(fetch(self.base + "/items")[2])
        self.assertEqual([i["name"] for i in items], ["apple", "pear"])
        self.assertEqual(fetch(f"{self.base}/items/{apple['id']}")[0], 200)
        self.assertEqual(fetch(f"{self.base}/items/{apple['id']}", method="DELETE")[0], 204)
        self.assertEqual(fetch(f"{self.base}/items/{apple['id']}")[0], 404)
        self.assertEqual(json.loads(fetch(self.base + "/")[2]), {"service": "test-svc", "items": 1})

    def test_bad_requests_are_refused(self):
        self.assertEqual(self.post("/items", b"nope")[0], 400)
        self.assertEqual(self.post("/items", b'{"name":"  "}')[0], 400)
        self.assertEqual(fetch(self.base + "/nothing")[0], 404)
        self.assertEqual(fetch(self.base + "/items/42", method="DELETE")[0], 404)


if __name__ == "__main__":
    unittest.main()

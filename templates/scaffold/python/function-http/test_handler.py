import io
import json
import unittest

from handler import check_config, create_handler
from server import Logger
from test_server import RunningServer, fetch


class HandlerTest(unittest.TestCase):
    def setUp(self):
        self.greeting = "Hi"
        self.running = RunningServer(create_handler(lambda: self.greeting, Logger(stream=io.StringIO())))
        self.running.__enter__()
        self.addCleanup(self.running.__exit__, None, None, None)
        self.base = self.running.base

    def test_get_greets_the_name_in_the_query(self):
        status, headers, body = fetch(self.base + "/?name=Ada")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(body), {"message": "Hi, Ada!"})

    def test_get_without_a_name_greets_the_world(self):
        self.assertEqual(json.loads(fetch(self.base + "/")[2]), {"message": "Hi, World!"})

    def test_post_greets_the_name_in_the_json_body(self):
        status, _, body = fetch(self.base + "/", data=b'{"name":"Grace"}', headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"message": "Hi, Grace!"})

    def test_the_greeting_is_read_for_every_request(self):
        self.greeting = "Howdy"
        self.assertEqual(json.loads(fetch(self.base + "/?name=Ada")[2]), {"message": "Howdy, Ada!"})

    def test_a_blank_greeting_is_rejected(self):
        with self.assertRaisesRegex(ValueError, "GREETING must not be blank"):
            check_config({"GREETING": "  "})
        check_config({"GREETING": "Hi"})
        check_config({})

    def test_bad_requests_are_refused(self):
        self.assertEqual(fetch(self.base + "/", data=b"not json")[0], 400)
        self.assertEqual(fetch(self.base + "/", method="DELETE")[0], 405)


if __name__ == "__main__":
    unittest.main()

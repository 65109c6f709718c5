import io
import json
import unittest

from cloudevents_http import CloudEvent, from_http, to_binary, to_structured
from handler import check_config, create_handler
from server import Logger
from test_server import RunningServer, fetch

REPLY_TYPE = "com.example.test.reply"


def greeting(name):
    event = CloudEvent.create("com.example.greeting", "/test", {"name": name})
    event.attributes["id"] = "evt-1"
    return event


class HandlerTest(unittest.TestCase):
    def setUp(self):
        self.greeting = "Hello"
        self.running = RunningServer(create_handler(lambda: self.greeting, REPLY_TYPE, "/test-fn",
                                                    Logger(stream=io.StringIO())))
        self.running.__enter__()
        self.addCleanup(self.running.__exit__, None, None, None)
        self.base = self.running.base

    def post(self, headers, body):
        return fetch(self.base + "/", data=body, method="POST", headers=headers)

    def check_reply(self, status, headers, body, name, greeting="Hello"):
        self.assertEqual(status, 200, body)
        reply = from_http(dict(headers.items()), body)
        self.assertEqual(reply["type"], REPLY_TYPE)
        self.assertEqual(reply["source"], "/test-fn")
        self.assertEqual(reply["subject"], "evt-1")
        self.assertEqual(reply.json(), {"message": f"{greeting}, {name}!"})

    def test_binary_mode_in_binary_mode_out(self):
        status, headers, body = self.post(*to_binary(greeting("Ada")))
        self.assertEqual(headers["ce-type"], REPLY_TYPE)
        self.check_reply(status, headers, body, "Ada")

    def test_structured_mode_in_structured_mode_out(self):
        status, headers, body = self.post(*to_structured(greeting("Grace")))
        self.assertTrue(headers["Content-Type"].startswith("application/cloudevents+json"))
        self.check_reply(status, headers, body, "Grace")

    def test_an_event_without_data_greets_the_world(self):
        headers = {"ce-specversion": "1.0", "ce-id": "evt-1", "ce-source": "/test", "ce-type": "com.example.greeting"}
        self.check_reply(*self.post(headers, b""), "World")

    def test_the_greeting_is_read_for_every_event(self):
        self.greeting = "Howdy"
        self.check_reply(*self.post(*to_binary(greeting("Ada"))), "Ada", greeting="Howdy")

    def test_a_blank_greeting_is_rejected(self):
        with self.assertRaisesRegex(ValueError, "GREETING must not be blank"):
            check_config({"GREETING": "  "})
        check_config({"GREETING": "Hi"})
        check_config({})

    def test_requests_that_are_not_valid_events_are_refused(self):
        self.assertEqual(self.post({"Content-Type": "application/json"}, b'{"name":"x"}')[0], 400)
        no_source = json.dumps({"specversion": "1.0", "id": "1", "type": "t"}).encode()
        self.assertEqual(self.post({"Content-Type": "application/cloudevents+json"}, no_source)[0], 400)
        bad_data = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t", "ce-type": "t", "Content-Type": "text/plain"}
        self.assertEqual(self.post(bad_data, b"not json")[0], 422)
        self.assertEqual(fetch(self.base + "/")[0], 405)


if __name__ == "__main__":
    unittest.main()

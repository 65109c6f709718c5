import base64
import json
import unittest

from cloudevents_http import CloudEvent, CloudEventError, from_http, is_structured, to_binary, to_structured

BINARY_HEADERS = {
    "ce-specversion": "1.0",
    "ce-id": "evt-1",
    "ce-source": "/test",
    "ce-type": "com.example.greeting",
    "Content-Type": "application/json",
}


class FromHTTPTest(unittest.TestCase):
    def test_binary_mode(self):
        event = from_http({**BINARY_HEADERS, "ce-traceparent": "00-1-2-01"}, b'{"name":"Ada"}')
        self.assertEqual(event["id"], "evt-1")
        self.assertEqual(event["type"], "com.example.greeting")
        self.assertEqual(event["datacontenttype"], "application/json")
        self.assertEqual(event["traceparent"], "00-1-2-01")
        self.assertEqual(event.json(), {"name": "Ada"})
        self.assertFalse(is_structured(BINARY_HEADERS))

    def test_binary_mode_header_names_are_case_insensitive_and_values_percent_decoded(self):
        event = from_http({"CE-SpecVersion": "1.0", "Ce-Id": "1", "ce-source": "/t", "ce-type": "t", "ce-subject": "caf%C3%A9%20bar"}, b"")
        self.assertEqual(event["subject"], "café bar")
        self.assertIsNone(event.json())

    def test_structured_mode(self):
        body = json.dumps({
            "specversion": "1.0", "id": "evt-2", "source": "/test", "type": "t",
            "datacontenttype": "application/json", "data": {"name": "Grace"}, "myext": "x",
        }).encode()
        headers = {"Content-Type": "application/cloudevents+json; charset=utf-8"}
        event = from_http(headers, body)
        self.assertTrue(is_structured(headers))
        self.assertEqual(event["id"], "evt-2")
        self.assertEqual(event["myext"], "x")
        self.assertEqual(event.json(), {"name": "Grace"})

    def test_structured_mode_with_base64_data(self):
        body = json.dumps({"specversion": "1.0", "id": "1", "source": "/t", "type": "t",
                           "datacontenttype": "application/octet-stream",
                           "data_base64": base64.b64encode(b"\x00\x01").decode()}).encode()
        self.assertEqual(from_http({"content-type": "application/cloudevents+json"}, body).data, b"\x00\x01")

    def test_rejects_what_is_not_a_valid_event(self):
        cases = {
            "plain json": ({"Content-Type": "application/json"}, b'{"name":"x"}'),
            "missing id": ({"Content-Type": "application/cloudevents+json"}, b'{"specversion":"1.0","source":"/t","type":"t"}'),
            "not json": ({"Content-Type": "application/cloudevents+json"}, b"nope"),
            "not an object": ({"Content-Type": "application/cloudevents+json"}, b"[1]"),
            "batch": ({"Content-Type": "application/cloudevents-batch+json"}, b"[]"),
            "binary missing type": ({"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t"}, b""),
            "wrong specversion": ({"ce-specversion": "0.3", "ce-id": "1", "ce-source": "/t", "ce-type": "t"}, b""),
        }
        for name, (headers, body) in cases.items():
            with self.subTest(name), self.assertRaises(CloudEventError):
                from_http(headers, body)


class ToHTTPTest(unittest.TestCase):
    def test_binary_round_trip(self):
        event = CloudEvent.create("com.example.reply", "/fn", {"message": "hi"}, subject="café bar")
        headers, body = to_binary(event)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["ce-specversion"], "1.0")
        self.assertEqual(headers["ce-subject"], "caf%C3%A9%20bar")
        self.assertEqual(json.loads(body), {"message": "hi"})
        back = from_http(headers, body)
        self.assertEqual(back.attributes, event.attributes)
        self.assertEqual(back.json(), {"message": "hi"})

    def test_structured_round_trip(self):
        event = CloudEvent.create("com.example.reply", "/fn", {"message": "hi"})
        headers, body = to_structured(event)
        self.assertTrue(headers["Content-Type"].startswith("application/cloudevents+json"))
        obj = json.loads(body)
        self.assertEqual(obj["data"], {"message": "hi"})
        self.assertEqual(obj["type"], "com.example.reply")
        back = from_http(headers, body)
        self.assertEqual(back.attributes, event.attributes)

    def test_binary_data_in_structured_mode_is_base64(self):
        event = CloudEvent.create("t", "/s", b"\xff\x00", datacontenttype="application/octet-stream")
        _, body = to_structured(event)
        self.assertEqual(base64.b64decode(json.loads(body)["data_base64"]), b"\xff\x00")

    def test_an_event_without_data(self):
        event = CloudEvent.create("t", "/s")
        headers, body = to_binary(event)
        self.assertNotIn("Content-Type", headers)
        self.assertEqual(body, b"")
        self.assertNotIn("data", json.loads(to_structured(event)[1]))

    def test_invalid_events_are_not_sent(self):
        with self.assertRaises(CloudEventError):
            to_binary(CloudEvent({"specversion": "1.0", "id": "1", "source": "/s"}))


if __name__ == "__main__":
    unittest.main()

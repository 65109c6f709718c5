"""A small, standard-library-only implementation of the CloudEvents 1.0 HTTP
protocol binding: binary mode (attributes in ce-* headers, data in the body)
and structured mode (the whole event as application/cloudevents+json).

    event = from_http(headers, body)           # either mode
    headers, body = to_binary(reply)           # or to_structured(reply)
"""

import base64
import json
import uuid
from datetime import datetime, timezone
from urllib.parse import quote, unquote

SPEC_VERSION = "1.0"
STRUCTURED_TYPE = "application/cloudevents+json"
BATCH_TYPE = "application/cloudevents-batch+json"
REQUIRED = ("id", "source", "specversion", "type")


class CloudEventError(ValueError):
    """The message is not a valid CloudEvent."""


class CloudEvent:
    """A CloudEvent: context attributes (including extensions) and data.

    data is bytes as read from a binary-mode body, any JSON value from a
    structured event, or what the sender set."""

    def __init__(self, attributes, data=None):
        self.attributes = dict(attributes)
        self.data = data

    @classmethod
    def create(cls, type, source, data=None, datacontenttype="application/json", **extensions):
        """A new event with a fresh id, the current time and specversion 1.0."""
        attrs = {
            "specversion": SPEC_VERSION,
            "id": str(uuid.uuid4()),
            "source": source,
            "type": type,
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if data is not None and datacontenttype:
            attrs["datacontenttype"] = datacontenttype
        attrs.update({k: v for k, v in extensions.items() if v is not None})
        return cls(attrs, data)

    def __getitem__(self, name):
        return self.attributes[name]

    def get(self, name, default=None):
        return self.attributes.get(name, default)

    def validate(self):
        for name in REQUIRED:
            value = self.attributes.get(name)
            if not isinstance(value, str) or not value:
                raise CloudEventError(f"required attribute {name} is missing or empty")
        if self.attributes["specversion"] != SPEC_VERSION:
            raise CloudEventError(f"specversion {self.attributes['specversion']} is not supported; use {SPEC_VERSION}")

    def json(self):
        """The data decoded as JSON (None without data); ValueError if it is not JSON."""
        if isinstance(self.data, (bytes, bytearray)):
            return json.loads(self.data) if self.data else None
        return self.data

    def __repr__(self):
        return f"CloudEvent({self.attributes!r}, {self.data!r})"


def _media_type(content_type):
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(content_type):
    mt = _media_type(content_type)
    return mt == "" or mt == "application/json" or mt.endswith("+json") or mt == "text/json"


def is_structured(headers):
    return _media_type(_lower(headers).get("content-type")) == STRUCTURED_TYPE


def _lower(headers):
    return {k.lower(): v for k, v in dict(headers).items()}


def from_http(headers, body):
    """Reads a CloudEvent from an HTTP message in binary or structured mode."""
    headers = _lower(headers)
    body = body or b""
    media = _media_type(headers.get("content-type"))
    if media == STRUCTURED_TYPE:
        try:
            obj = json.loads(body)
        except ValueError as err:
            raise CloudEventError(f"structured event is not JSON: {err}") from None
        if not isinstance(obj, dict):
            raise CloudEventError("structured event must be a JSON object")
        data = obj.pop("data", None)
        if "data_base64" in obj:
            try:
                data = base64.b64decode(obj.pop("data_base64"), validate=True)
            except (ValueError, TypeError) as err:
                raise CloudEventError(f"data_base64 is not base64: {err}") from None
        event = CloudEvent(obj, data)
    elif media == BATCH_TYPE:
        raise CloudEventError("batched events are not supported; send one event")
    elif "ce-specversion" in headers:
        attrs = {k[3:]: unquote(v) for k, v in headers.items() if k.startswith("ce-")}
        if "content-type" in headers:
            attrs["datacontenttype"] = headers["content-type"]
        event = CloudEvent(attrs, bytes(body))
    else:
        raise CloudEventError("no CloudEvent found: expected a ce-specversion header or Content-Type " + STRUCTURED_TYPE)
    event.validate()
    return event


def _encode_header(value):
    # The binding percent-encodes space, '"', '%' and anything outside
    # printable ASCII; UTF-8 first.
    return quote(str(value), safe="".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%'))


def _data_bytes(event):
    data = event.data
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str) and not _is_json(event.get("datacontenttype")):
        return data.encode()
    return json.dumps(data).encode()


def to_binary(event):
    """Encodes event in binary mode: returns (headers, body)."""
    event.validate()
    headers = {}
    for name, value in event.attributes.items():
        if name == "datacontenttype":
            headers["Content-Type"] = value
        elif value is not None:
            headers["ce-" + name] = _encode_header(value)
    if event.data is not None and "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"
    return headers, _data_bytes(event)


def to_structured(event):
    """Encodes event in structured mode: returns (headers, body)."""
    event.validate()
    obj = dict(event.attributes)
    data = event.data
    if isinstance(data, (bytes, bytearray)):
        if data and _is_json(obj.get("datacontenttype")):
            try:
                obj["data"] = json.loads(data)
            except ValueError:
                obj["data_base64"] = base64.b64encode(data).decode()
        elif data:
            obj["data_base64"] = base64.b64encode(data).decode()
    elif data is not None:
        obj["data"] = data
    return {"Content-Type": STRUCTURED_TYPE + "; charset=utf-8"}, json.dumps(obj).encode()

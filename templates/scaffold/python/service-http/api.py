"""The service's routes:

    GET    /            what this service is
    GET    /items       all items
    POST   /items       add one: {"name":"..."}
    GET    /items/<id>  one item
    DELETE /items/<id>  remove one
"""

import re
import threading
from datetime import datetime, timezone

from server import HTTPError, Response, json_response, read_json

ONE_ITEM = re.compile(r"^/items/([^/]+)$")


class Store:
    """Keeps items in memory; replace it with a database client."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = {}
        self._next = 0

    def add(self, name):
        with self._lock:
            self._next += 1
            item = {"id": str(self._next), "name": name,
                    "createdAt": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")}
            self._items[item["id"]] = item
            return item

    def get(self, item_id):
        with self._lock:
            return self._items.get(item_id)

    def remove(self, item_id):
        with self._lock:
            return self._items.pop(item_id, None) is not None

    def list(self):
        with self._lock:
            return list(self._items.values())


def create_api(name, logger):
    store = Store()

    def app(req):
        one = ONE_ITEM.match(req.path)
        if req.path == "/" and req.method == "GET":
            return json_response(200, {"service": name, "items": len(store.list())})
        if req.path == "/items" and req.method == "GET":
            return json_response(200, store.list())
        if req.path == "/items" and req.method == "POST":
            try:
                body = read_json(req)
            except HTTPError:
                return json_response(400, {"error": 'the body must be JSON such as {"name":"apple"}'})
            item_name = body.get("name") if isinstance(body, dict) else None
            if not isinstance(item_name, str) or not item_name.strip():
                return json_response(400, {"error": "name is required"})
            item = store.add(item_name.strip())
            logger.info("item added", id=item["id"])
            return json_response(201, item, {"Location": f"/items/{item['id']}"})
        if one and req.method == "GET":
            item = store.get(one[1])
            return json_response(200, item) if item else json_response(404, {"error": f"no item {one[1]}"})
        if one and req.method == "DELETE":
            if not store.remove(one[1]):
                return json_response(404, {"error": f"no item {one[1]}"})
            logger.info("item removed", id=one[1])
            return Response(204)
        return json_response(404, {"error": f"no route {req.method} {req.path}"})

    return app

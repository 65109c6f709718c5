"""The function: GET /?name=Ada or POST {"name":"Ada"} answers
{"message":"<greeting>, Ada!"}."""

from server import HTTPError, json_response, read_json


def check_config(values):
    """Rejects a live config update that would leave a blank greeting (a
    GREETING removed from the config falls back to the default)."""
    if "GREETING" in values and not values["GREETING"].strip():
        raise ValueError("GREETING must not be blank")


def create_handler(greeting, logger):
    """greeting() returns the current greeting: it is called for every
    request, so a live config change needs no restart."""

    def handle(req):
        if req.method in ("GET", "HEAD"):
            name = (req.query.get("name") or [""])[0]
        elif req.method == "POST":
            try:
                body = read_json(req)
            except HTTPError:
                return json_response(400, {"error": 'the body must be JSON such as {"name":"Ada"}'})
            name = body.get("name") if isinstance(body, dict) else None
        else:
            return json_response(405, {"error": "method not allowed"}, {"Allow": "GET, HEAD, POST"})
        name = name.strip() if isinstance(name, str) and name.strip() else "World"
        logger.debug("greeting", name=name)
        return json_response(200, {"message": f"{greeting()}, {name}!"})

    return handle

"""The function: receives a CloudEvent over HTTP in binary or structured mode
and replies with a CloudEvent in the same mode."""

from cloudevents_http import CloudEvent, CloudEventError, from_http, is_structured, to_binary, to_structured
from server import HTTPError, Response, json_response


def check_config(values):
    """Rejects a live config update that would leave a blank greeting (a
    GREETING removed from the config falls back to the default)."""
    if "GREETING" in values and not values["GREETING"].strip():
        raise ValueError("GREETING must not be blank")


def handle(event, greeting, reply_type, source):
    """Turns the event received into the reply event. Put your logic here."""
    try:
        data = event.json()
    except ValueError:
        raise HTTPError(422, 'the event data must be JSON such as {"name":"Ada"}') from None
    name = data.get("name") if isinstance(data, dict) else None
    name = name.strip() if isinstance(name, str) and name.strip() else "World"
    return CloudEvent.create(reply_type, source, {"message": f"{greeting}, {name}!"}, subject=event["id"])


def create_handler(greeting, reply_type, source, logger):
    """greeting() returns the current greeting: it is called for every
    event, so a live config change needs no restart."""

    def app(req):
        if req.method != "POST":
            return json_response(405, {"error": "send a CloudEvent with POST"}, {"Allow": "POST"})
        try:
            event = from_http(req.headers, req.body)
        except CloudEventError as err:
            return json_response(400, {"error": f"the request is not a valid CloudEvent: {err}"})
        structured = is_structured(req.headers)
        logger.debug("received event", id=event["id"], type=event["type"], source=event["source"],
                    mode="structured" if structured else "binary")
        try:
            reply = handle(event, greeting(), reply_type, source)
        except HTTPError as err:
            logger.warn("rejected event", id=event["id"], error=str(err))
            raise
        headers, body = to_structured(reply) if structured else to_binary(reply)
        return Response(200, headers, body)

    return app

'use strict';
const { CloudEvent, HTTP } = require('cloudevents');
const { sendJSON, readBody } = require('./server');

const STRUCTURED = 'application/cloudevents+json';
// The Content-Types whose data the SDK parses as JSON.
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8', STRUCTURED, `${STRUCTURED}; charset=utf-8`]);

function httpError(status, message) {
  return Object.assign(new Error(message), { status });
}

// checkConfig rejects a live config update that would leave a blank greeting
// (a GREETING removed from the config falls back to the default).
function checkConfig(values) {
  if ('GREETING' in values && !values.GREETING.trim()) throw new Error('GREETING must not be blank');
}

// fromBinary reads a CloudEvent in HTTP binary mode: its attributes are
// the ce-* headers, its data the body, parsed when Content-Type is JSON.
// It reads a request as HTTP.toEvent does, for less: the SDK builds error
// objects for every event it parses, which a profile under load found to
// be the handler's largest cost after the socket.
function fromBinary(headers, body) {
  const attrs = {};
  for (const name in headers) {
    if (name.startsWith('ce-')) attrs[name.slice(3)] = String(headers[name]);
  }
  if (attrs.time !== undefined) {
    const t = new Date(attrs.time);
    if (!Number.isNaN(t.getTime())) attrs.time = t.toISOString();
  }
  const type = headers['content-type'];
  let data = body;
  if (type !== undefined) {
    attrs.datacontenttype = type;
    // A bare JSON string (data without its quotes) reads as the SDK reads it.
    if (data !== '' && JSON_TYPES.has(type)) data = JSON.parse(/^[[{"]/.test(data) ? data : `"${data}"`);
  }
  return new CloudEvent({ ...attrs, data }, false);
}

// handle is the function: it turns the event it receives into the event it
// replies with. Put your logic here.
function handle(event, { greeting, replyType, source }) {
  let data = event.data;
  if (typeof data === 'string' && data !== '') {
    try {
      data = JSON.parse(data);
    } catch {
      throw httpError(422, 'the event data must be JSON such as {"name":"Ada"}');
    }
  }
  const name = data && typeof data.name === 'string' && data.name.trim() ? data.name.trim() : 'World';
  return new CloudEvent({
    source,
    type: replyType,
    subject: event.id,
    datacontenttype: 'application/json',
    data: { message: `${greeting}, ${name}!` },
  });
}

// createHandler receives a CloudEvent over HTTP in binary or structured mode
// and answers with the reply event in the same mode. greeting() returns the
// current greeting: it is called for every event, so a live config change
// needs no restart.
function createHandler({ greeting, replyType, source, logger }) {
  return async (req, res) => {
    if (req.method !== 'POST') {
      return sendJSON(res, 405, { error: 'send a CloudEvent with POST' }, { Allow: 'POST' });
    }
    const body = await readBody(req);
    const contentType = String(req.headers['content-type'] || '');
    const structured = contentType.startsWith(STRUCTURED);
    let event;
    try {
      // Binary mode 1.0 (what skiff-relay sends) is read here; structured
      // and batched events, and older versions, by the SDK.
      const binary = !contentType.startsWith('application/cloudevents') && req.headers['ce-specversion'] === '1.0';
      event = binary ? fromBinary(req.headers, body) : HTTP.toEvent({ headers: req.headers, body });
      if (Array.isArray(event)) throw new Error('batches are not supported; send one event');
      event.validate();
    } catch (err) {
      const detail = err.errors ? JSON.stringify(err.errors) : err.message;
      return sendJSON(res, 400, { error: `the request is not a valid CloudEvent: ${detail}` });
    }
    logger.debug('received event', { id: event.id, type: event.type, source: event.source, mode: structured ? 'structured' : 'binary' });
    let reply;
    try {
      reply = handle(event, { greeting: greeting(), replyType, source });
    } catch (err) {
      if (!err.status) throw err;
      logger.warn('rejected event', { id: event.id, error: err.message });
      return sendJSON(res, err.status, { error: err.message });
    }
    const message = structured ? HTTP.structured(reply) : HTTP.binary(reply);
    res.writeHead(200, message.headers);
    res.end(message.body);
  };
}

module.exports = { checkConfig, createHandler, fromBinary, handle };

'use strict';
const { CloudEvent, HTTP } = require('cloudevents');
const { sendJSON, readBody } = require('./server');

const STRUCTURED = 'application/cloudevents+json';

function httpError(status, message) {
  return Object.assign(new Error(message), { status });
}

// checkConfig rejects a live config update that would leave a blank greeting
// (a GREETING removed from the config falls back to the default).
function checkConfig(values) {
  if ('GREETING' in values && !values.GREETING.trim()) throw new Error('GREETING must not be blank');
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
    const structured = String(req.headers['content-type'] || '').startsWith(STRUCTURED);
    let event;
    try {
      event = HTTP.toEvent({ headers: req.headers, body });
      if (Array.isArray(event)) throw new Error('batches are not supported; send one event');
      event.validate();
    } catch (err) {
      const detail = err.errors ? JSON.stringify(err.errors) : err.message;
      return sendJSON(res, 400, { error: `the request is not a valid CloudEvent: ${detail}` });
    }
    logger.info('received event', { id: event.id, type: event.type, source: event.source, mode: structured ? 'structured' : 'binary' });
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

module.exports = { checkConfig, createHandler, handle };

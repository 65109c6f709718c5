'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { CloudEvent, HTTP } = require('cloudevents');
const { createLogger, createServer } = require('../server');
const { checkConfig, createHandler, fromBinary } = require('../handler');

const logger = createLogger({ stream: { write() {} } });
const REPLY_TYPE = 'com.example.test.reply';

async function withServer(fn, greeting = () => 'Hello') {
  const srv = createServer(createHandler({ greeting, replyType: REPLY_TYPE, source: '/test-fn', logger }), { logger });
  const { port } = await srv.listen(0, '127.0.0.1');
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    await srv.shutdown(1000);
  }
}

const greeting = (name) => new CloudEvent({
  id: 'evt-1',
  source: '/test',
  type: 'com.example.greeting',
  datacontenttype: 'application/json',
  data: { name },
});

async function post(base, message) {
  const res = await fetch(base, { method: 'POST', headers: message.headers, body: message.body });
  const headers = Object.fromEntries(res.headers.entries());
  return { status: res.status, headers, body: await res.text() };
}

function checkReply(res, name, greeting = 'Hello') {
  assert.equal(res.status, 200, res.body);
  const reply = HTTP.toEvent({ headers: res.headers, body: res.body });
  reply.validate();
  assert.equal(reply.type, REPLY_TYPE);
  assert.equal(reply.source, '/test-fn');
  assert.equal(reply.subject, 'evt-1');
  const data = typeof reply.data === 'string' ? JSON.parse(reply.data) : reply.data;
  assert.deepEqual(data, { message: `${greeting}, ${name}!` });
  return reply;
}

test('binary mode in, binary mode out', () => withServer(async (base) => {
  const res = await post(base, HTTP.binary(greeting('Ada')));
  assert.equal(res.headers['ce-type'], REPLY_TYPE);
  checkReply(res, 'Ada');
}));

test('structured mode in, structured mode out', () => withServer(async (base) => {
  const res = await post(base, HTTP.structured(greeting('Grace')));
  assert.match(res.headers['content-type'], /^application\/cloudevents\+json/);
  checkReply(res, 'Grace');
}));

test('an event without data greets the world', () => withServer(async (base) => {
  const res = await post(base, {
    headers: { 'ce-specversion': '1.0', 'ce-id': 'evt-1', 'ce-source': '/test', 'ce-type': 'com.example.greeting' },
    body: '',
  });
  checkReply(res, 'World');
}));

test('the greeting is read for every event', async () => {
  let current = 'Hello';
  await withServer(async (base) => {
    checkReply(await post(base, HTTP.binary(greeting('Ada'))), 'Ada');
    current = 'Howdy';
    checkReply(await post(base, HTTP.binary(greeting('Ada'))), 'Ada', 'Howdy');
  }, () => current);
});

test('a blank GREETING is rejected', () => {
  assert.throws(() => checkConfig({ GREETING: '  ' }), /GREETING must not be blank/);
  checkConfig({ GREETING: 'Hi' });
  checkConfig({});
});

test('requests that are not valid events are refused', () => withServer(async (base) => {
  const notEvent = await post(base, { headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' });
  assert.equal(notEvent.status, 400);
  const noSource = await post(base, { headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion":"1.0","id":"1","type":"t"}' });
  assert.equal(noSource.status, 400);
  const badData = await post(base, {
    headers: { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-source': '/t', 'ce-type': 't', 'content-type': 'text/plain' },
    body: 'not json',
  });
  assert.equal(badData.status, 422);
  assert.equal((await fetch(base)).status, 405);
}));

test('a binary-mode event reads as the SDK reads it', () => {
  const cases = [
    HTTP.binary(greeting('Ada')),
    HTTP.binary(new CloudEvent({
      id: 'evt-2', source: '/test', type: 'com.example.note', subject: 's', time: '2026-12-06T16:00:00Z',
      datacontenttype: 'text/plain', data: 'just text', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    })),
    // (With a time: without one, each reader makes one, a moment apart.)
    { headers: { 'ce-specversion': '1.0', 'ce-id': 'evt-3', 'ce-source': '/test', 'ce-type': 't', 'ce-time': '2026-12-06T16:00:00.5+01:00' }, body: '' },
    {
      headers: { 'ce-specversion': '1.0', 'ce-id': 'evt-4', 'ce-source': '/test', 'ce-type': 't', 'ce-time': '2026-12-06T16:00:00Z', 'content-type': 'application/vnd.x+json' },
      body: '{"a":[1,2]}',
    },
    { headers: { 'ce-specversion': '1.0', 'ce-id': 'evt-5', 'ce-source': '/test', 'ce-type': 't', 'ce-time': '2026-12-06T16:00:00Z', 'content-type': 'application/json' }, body: '[1,{"b":null}]' },
    { headers: { 'ce-specversion': '1.0', 'ce-id': 'evt-6', 'ce-source': '/test', 'ce-type': 't', 'ce-time': '2026-12-06T16:00:00Z', 'content-type': 'application/json' }, body: 'bare' },
  ];
  for (const message of cases) {
    // Node.js gives a handler lower-case header names.
    const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
    const body = message.body === undefined ? '' : String(message.body);
    const ours = fromBinary(headers, body);
    ours.validate();
    assert.deepEqual(ours.toJSON(), HTTP.toEvent({ headers, body }).toJSON());
  }
});

test('binary-mode events that are not valid are refused', () => withServer(async (base) => {
  const binary = { 'ce-specversion': '1.0', 'ce-id': '1', 'ce-source': '/t', 'ce-type': 't' };
  const badJSON = await post(base, { headers: { ...binary, 'content-type': 'application/json' }, body: '{"name":' });
  assert.equal(badJSON.status, 400, badJSON.body);
  const { 'ce-source': _, ...noSource } = binary;
  const missing = await post(base, { headers: { ...noSource, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(missing.status, 400, missing.body);
  const badTime = await post(base, { headers: { ...binary, 'ce-time': 'yesterday' }, body: '' });
  assert.equal(badTime.status, 400, badTime.body);
}));

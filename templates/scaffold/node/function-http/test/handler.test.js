'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { createLogger, createServer } = require('../server');
const { checkConfig, createHandler } = require('../handler');

const logger = createLogger({ stream: { write() {} } });

async function withServer(fn, greeting = () => 'Hi') {
  const srv = createServer(createHandler({ greeting, logger }), { logger });
  const { port } = await srv.listen(0, '127.0.0.1');
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    await srv.shutdown(1000);
  }
}

test('GET greets the name in the query', () => withServer(async (base) => {
  const res = await fetch(`${base}/?name=Ada`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  assert.deepEqual(await res.json(), { message: 'Hi, Ada!' });
}));

test('GET without a name greets the world', () => withServer(async (base) => {
  assert.deepEqual(await (await fetch(base)).json(), { message: 'Hi, World!' });
}));

test('POST greets the name in the JSON body', () => withServer(async (base) => {
  const res = await fetch(base, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"Grace"}' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { message: 'Hi, Grace!' });
}));

test('bad requests are refused', () => withServer(async (base) => {
  assert.equal((await fetch(base, { method: 'POST', body: 'not json' })).status, 400);
  assert.equal((await fetch(base, { method: 'DELETE' })).status, 405);
}));

test('the greeting is read for every request', async () => {
  let greeting = 'Hi';
  await withServer(async (base) => {
    assert.deepEqual(await (await fetch(`${base}/?name=Ada`)).json(), { message: 'Hi, Ada!' });
    greeting = 'Howdy';
    assert.deepEqual(await (await fetch(`${base}/?name=Ada`)).json(), { message: 'Howdy, Ada!' });
  }, () => greeting);
});

test('a blank GREETING is rejected', () => {
  assert.throws(() => checkConfig({ GREETING: '  ' }), /GREETING must not be blank/);
  checkConfig({ GREETING: 'Hi' });
  checkConfig({});
});

import test from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, createServer } from './server';
import { createAPI, type Item } from './api';

const logger = createLogger({ stream: { write: () => true } });

async function withServer(fn: (base: string) => Promise<void>) {
  const srv = createServer(createAPI({ name: 'test-svc', logger }), { logger });
  const { port } = await srv.listen(0, '127.0.0.1');
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    await srv.shutdown(1000);
  }
}

const postJSON = (url: string, body: string) => fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });

test('items can be added, listed, read and removed', () => withServer(async (base) => {
  assert.deepEqual(await (await fetch(`${base}/items`)).json(), []);

  const created = await postJSON(`${base}/items`, '{"name":"apple"}');
  assert.equal(created.status, 201);
  const apple = (await created.json()) as Item;
  assert.equal(apple.name, 'apple');
  assert.equal(created.headers.get('location'), `/items/${apple.id}`);
  await postJSON(`${base}/items`, '{"name":"pear"}');

  const list = (await (await fetch(`${base}/items`)).json()) as Item[];
  assert.deepEqual(list.map((i) => i.name), ['apple', 'pear']);
  assert.equal((await fetch(`${base}/items/${apple.id}`)).status, 200);
  assert.equal((await fetch(`${base}/items/${apple.id}`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${base}/items/${apple.id}`)).status, 404);
  assert.deepEqual(await (await fetch(base)).json(), { service: 'test-svc', items: 1 });
}));

test('bad requests are refused', () => withServer(async (base) => {
  assert.equal((await postJSON(`${base}/items`, 'nope')).status, 400);
  assert.equal((await postJSON(`${base}/items`, '{"name":"  "}')).status, 400);
  assert.equal((await fetch(`${base}/nothing`)).status, 404);
  assert.equal((await fetch(`${base}/items/42`, { method: 'DELETE' })).status, 404);
}));

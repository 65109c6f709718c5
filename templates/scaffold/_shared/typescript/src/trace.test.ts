import test from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, createServer, type App } from './server';
import { TRACES_PER_SECOND, continueTrace, createSampler, currentTrace, dependencyURL, emitEvent, sampled, traceparent, tracedFetch, type Trace } from './trace';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

test('continueTrace continues a valid traceparent and starts a trace otherwise', () => {
  const t = continueTrace({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'congo=t61rcWkgMzE' });
  assert.equal(t.traceId, TRACE);
  assert.equal(t.parentId, SPAN);
  assert.match(t.spanId, /^[0-9a-f]{16}$/);
  assert.notEqual(t.spanId, SPAN);
  assert.equal(t.state, 'congo=t61rcWkgMzE');
  assert.equal(traceparent(t), `00-${TRACE}-${t.spanId}-01`);
  assert.equal(continueTrace({ traceparent: `cc-${TRACE}-${SPAN}-03-later` }).flags, '01');
  for (const bad of ['', `00-${TRACE}-${SPAN}`, `00-${TRACE.toUpperCase()}-${SPAN}-01`, `ff-${TRACE}-${SPAN}-01`,
    `00-${'0'.repeat(32)}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01-extra`]) {
    const n = continueTrace({ traceparent: bad, tracestate: 'a=b' });
    assert.notEqual(n.traceId, TRACE, bad);
    assert.match(n.traceId, /^[0-9a-f]{32}$/);
    assert.equal(n.parentId, '');
    assert.equal(n.state, '');
  }
  // A trace that comes keeps its flag; one started here is sampled when the sampler says so.
  assert.equal(sampled(continueTrace({ traceparent: `00-${TRACE}-${SPAN}-00` }, () => true)), false);
  assert.equal(continueTrace({}, () => false).flags, '00');
  assert.equal(continueTrace({}, () => true).flags, '01');
});

test('the sampler allows TRACES_PER_SECOND traces a second', () => {
  let now = 1000000;
  const sample = createSampler(() => now);
  const count = (n: number) => Array.from({ length: n }, () => sample()).filter(Boolean).length;
  assert.equal(count(TRACES_PER_SECOND + 5), TRACES_PER_SECOND);
  now += 1000 / TRACES_PER_SECOND + 1; // one trace's time
  assert.equal(count(5), 1);
  now += 3600 * 1000; // a quiet hour fills the bucket, no more
  assert.equal(count(TRACES_PER_SECOND + 5), TRACES_PER_SECOND);
});

test('a request is logged when its trace is sampled or it failed', async () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ stream: { write: (s: string) => lines.push(JSON.parse(s)) } });
  const app: App = async (req, res) => {
    res.writeHead(req.url === '/fail' ? 503 : 200);
    res.end();
  };
  const srv = createServer(app, { logger });
  const { port } = await srv.listen(0, '127.0.0.1');
  try {
    for (const [path, flags] of [['/ok', '00'], ['/fail', '00'], ['/ok', '01']]) {
      await (await fetch(`http://127.0.0.1:${port}${path}`, { headers: { traceparent: `00-${TRACE}-${SPAN}-${flags}` } })).text();
    }
    for (let i = 0; i < 100 && lines.filter((l) => l.msg === 'request').length < 2; i++) await new Promise(setImmediate);
  } finally {
    await srv.shutdown(1000);
  }
  const logged = lines.filter((l) => l.msg === 'request').map((l) => `${l.path} ${l.status}`);
  assert.deepEqual(logged, ['/fail 503', '/ok 200']);
});

test('dependencyURL reads <NAME>_URL', () => {
  assert.equal(dependencyURL('greeter-api', { GREETER_API_URL: 'http://greeter-api:8080/' }), 'http://greeter-api:8080');
  assert.throws(() => dependencyURL('other', {}), /OTHER_URL is not set/);
});

interface Recorded { headers: http.IncomingHttpHeaders; body: string }

// recorder is an HTTP server that keeps the headers and body of each request.
async function recorder(status: number) {
  const got: Recorded[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.writeHead(status);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { got, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

test('a request is handled, logged and called on in its trace', async () => {
  const dep = await recorder(200);
  const sink = await recorder(202);
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ stream: { write: (s: string) => lines.push(JSON.parse(s)) }, fields: { service: 'test' } });
  let span: Trace | undefined;
  const app: App = async (_req, res) => {
    span = currentTrace();
    logger.info('calling on');
    await tracedFetch(`${dependencyURL('dep', { DEP_URL: dep.url })}/x`);
    await emitEvent({ type: 'com.example.done', source: '/test', data: { n: 1 }, sink: sink.url });
    res.writeHead(201);
    res.end();
  };
  const srv = createServer(app, { logger });
  const { port } = await srv.listen(0, '127.0.0.1');
  try {
    const res = await fetch(`http://127.0.0.1:${port}/items`, { method: 'POST', headers: { traceparent: `00-${TRACE}-${SPAN}-01` } });
    assert.equal(res.status, 201);
    await fetch(`http://127.0.0.1:${port}/healthz`);
    // The request line is written when the response is closed.
    for (let i = 0; i < 100 && !lines.some((l) => l.msg === 'request'); i++) await new Promise(setImmediate);
  } finally {
    await srv.shutdown(1000);
    dep.close();
    sink.close();
  }
  assert.equal(span?.traceId, TRACE);
  assert.equal(dep.got[0].headers.traceparent, `00-${TRACE}-${span?.spanId}-01`);
  assert.equal(sink.got[0].headers.traceparent, `00-${TRACE}-${span?.spanId}-01`);
  assert.equal(sink.got[0].headers['ce-type'], 'com.example.done');
  assert.equal(sink.got[0].body, '{"n":1}');
  assert.deepEqual(lines.filter((l) => l.trace_id === TRACE).map((l) => l.msg), ['calling on', 'request']);
  const request = lines.find((l) => l.msg === 'request');
  assert.equal(request?.status, 201);
  assert.equal(request?.path, '/items');
  assert.equal(lines.filter((l) => l.msg === 'request').length, 1, 'the probes are not logged');
});

test('emitEvent says what K_SINK answered', async () => {
  const sink = await recorder(503);
  try {
    await assert.rejects(emitEvent({ type: 'a.b', source: '/t', data: {}, sink: sink.url }), /K_SINK answered 503/);
    await assert.rejects(emitEvent({ type: 'a.b', source: '/t', data: {}, sink: '' }), /K_SINK is not set/);
  } finally {
    sink.close();
  }
});

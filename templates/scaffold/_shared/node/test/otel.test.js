'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { createLogger, createServer } = require('../server');
const { spansFromEnv } = require('../trace');

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

// A request's span reaches an OTLP/HTTP receiver (this test's, reading
// what the real SDK's exporter sends) with the caller's span as parent and
// the span id the request sends on as its own.
test('spans go over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set', async () => {
  assert.equal(spansFromEnv({}), undefined);
  const exports = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      exports.push({ path: req.url, type: req.headers['content-type'], body: JSON.parse(body) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${receiver.address().port}`;
  const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint; // the exporter reads it
  let spans;
  try {
    spans = spansFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'orders' });
  } finally {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
  }
  const { currentTrace } = require('../trace');
  let sent;
  const logger = createLogger({ stream: { write: () => {} } });
  const srv = createServer((req, res) => {
    sent = currentTrace();
    res.writeHead(502);
    res.end();
  }, { logger, spans });
  const { port } = await srv.listen(0, '127.0.0.1');
  try {
    const res = await fetch(`http://127.0.0.1:${port}/orders`, { headers: { traceparent: `00-${TRACE}-${SPAN}-01` } });
    assert.equal(res.status, 502);
    await srv.shutdown(1000); // every response closed: every span ended
    await spans.shutdown(); // flushes
  } finally {
    receiver.close();
  }
  assert.equal(exports.length, 1);
  assert.equal(exports[0].path, '/v1/traces');
  const [rs] = exports[0].body.resourceSpans;
  const service = rs.resource.attributes.find((a) => a.key === 'service.name');
  assert.equal(service.value.stringValue, 'orders');
  const [span] = rs.scopeSpans[0].spans;
  assert.equal(span.traceId, TRACE);
  assert.equal(span.parentSpanId, SPAN);
  assert.equal(span.spanId, sent.spanId);
  assert.equal(span.name, 'GET /orders');
  assert.equal(span.kind, 2); // SPAN_KIND_SERVER
  const status = span.attributes.find((a) => a.key === 'http.response.status_code');
  assert.equal(Number(status.value.intValue), 502);
  assert.equal(span.status.code, 2); // STATUS_CODE_ERROR
});

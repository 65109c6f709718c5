import test from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, createServer } from './server';
import { currentTrace, spansFromEnv, type Trace } from './trace';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

interface OTLPAttr { key: string; value: { stringValue?: string; intValue?: number | string } }
interface OTLPSpan { traceId: string; spanId: string; parentSpanId: string; name: string; kind: number; attributes: OTLPAttr[]; status: { code?: number } }
interface OTLPExport { resourceSpans: { resource: { attributes: OTLPAttr[] }; scopeSpans: { spans: OTLPSpan[] }[] }[] }

// A request's span reaches an OTLP/HTTP receiver (this test's, reading
// what the real SDK's exporter sends) with the caller's span as parent and
// the span id the request sends on as its own.
test('spans go over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set', async () => {
  assert.equal(spansFromEnv({}), undefined);
  const exports: { path?: string; body: OTLPExport }[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      exports.push({ path: req.url, body: JSON.parse(body) as OTLPExport });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint; // the exporter reads it
  let spans;
  try {
    spans = spansFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'orders' });
  } finally {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
  }
  assert.ok(spans);
  let sent: Trace | undefined;
  const logger = createLogger({ stream: { write: () => true } });
  const srv = createServer((_req, res) => {
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
  assert.equal(rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue, 'orders');
  const [span] = rs.scopeSpans[0].spans;
  assert.equal(span.traceId, TRACE);
  assert.equal(span.parentSpanId, SPAN);
  assert.equal(span.spanId, sent?.spanId);
  assert.equal(span.name, 'GET /orders');
  assert.equal(span.kind, 2); // SPAN_KIND_SERVER
  assert.equal(Number(span.attributes.find((a) => a.key === 'http.response.status_code')?.value.intValue), 502);
  assert.equal(span.status.code, 2); // STATUS_CODE_ERROR
});

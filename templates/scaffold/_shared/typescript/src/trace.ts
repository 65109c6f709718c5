// Following one request: W3C trace context (https://www.w3.org/TR/trace-context/).
// server.ts runs each request in the trace of its traceparent header (or a
// new one) and logs a "request" line with its trace_id when the trace is
// sampled or the answer is a 5xx; every line the logger writes while the
// request is handled carries trace_id too, so `skiff logs --trace ID` finds
// them. A trace that comes keeps its sampled flag; of those started here at
// most TRACES_PER_SECOND a second are sampled (a line for every request is
// a cost of its own under load). Call dependencies with tracedFetch
// (dependencyURL gives their <NAME>_URL) and send events to K_SINK with
// emitEvent: both carry the trace on as the traceparent header. With
// OTEL_EXPORTER_OTLP_ENDPOINT set, the requests' spans go over OTLP (otel.ts).
import { AsyncLocalStorage } from 'node:async_hooks';
import * as crypto from 'node:crypto';
import type { Spans } from './otel';

/** Trace is the trace a request belongs to, and this workload's span of it. */
export interface Trace {
  traceId: string; // 32 hex digits
  spanId: string; // 16 hex digits: the parent of the calls made in it
  parentId: string; // the caller's span; '' when the trace started here
  flags: string; // 2 hex digits; 01: sampled
  state: string; // the vendors' tracestate
}

const storage = new AsyncLocalStorage<Trace>();
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

const randomHex = (bytes: number): string => crypto.randomBytes(bytes).toString('hex');

type Headers = Record<string, string | string[] | undefined>;

export const TRACES_PER_SECOND = 20;

/** createSampler allows TRACES_PER_SECOND sampled traces a second: a token bucket of as many tokens that fills at that rate. now is in milliseconds. */
export function createSampler(now: () => number = Date.now): () => boolean {
  let tokens = TRACES_PER_SECOND;
  let last = now();
  return () => {
    const t = now();
    if (t > last) {
      tokens = Math.min(TRACES_PER_SECOND, tokens + ((t - last) / 1000) * TRACES_PER_SECOND);
      last = t;
    }
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

const sampleNew = createSampler();

/** continueTrace reads the traceparent and tracestate of headers (lower-case names); without a valid traceparent it starts a trace, sampled if sample says so. Either way this hop gets a span id of its own. */
export function continueTrace(headers: Headers = {}, sample: () => boolean = sampleNew): Trace {
  const m = TRACEPARENT.exec(String(headers.traceparent ?? ''));
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5]) || /^0+$/.test(m[2]) || /^0+$/.test(m[3])) {
    return { traceId: randomHex(16), spanId: randomHex(8), parentId: '', flags: sample() ? '01' : '00', state: '' };
  }
  // A later version: only the sampled bit means the same.
  const flags = m[1] === '00' ? m[4] : `0${parseInt(m[4], 16) & 1}`;
  return { traceId: m[2], spanId: randomHex(8), parentId: m[3], flags, state: String(headers.tracestate ?? '') };
}

/** sampled tells whether t is sampled: its hops log a line for it. */
export const sampled = (t: Trace): boolean => (parseInt(t.flags, 16) & 1) === 1;

/** traceparent is the header value that makes trace's span the parent. */
export const traceparent = (t: Trace): string => `00-${t.traceId}-${t.spanId}-${t.flags}`;

/** runInTrace calls fn with trace as the current trace of everything it does. */
export const runInTrace = <T>(trace: Trace, fn: () => T): T => storage.run(trace, fn);

/** currentTrace is the trace of the request being handled, or undefined. */
export const currentTrace = (): Trace | undefined => storage.getStore();

/** traceHeaders are the headers that carry the current trace on. */
export function traceHeaders(trace = currentTrace()): Record<string, string> {
  if (!trace) return {};
  return trace.state ? { traceparent: traceparent(trace), tracestate: trace.state } : { traceparent: traceparent(trace) };
}

/** tracedFetch is fetch with the current trace's headers added. */
export function tracedFetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  for (const [k, v] of Object.entries(traceHeaders())) headers.set(k, v);
  return fetch(url, { ...init, headers });
}

/** dependencyURL is the base URL of the workload name this one depends on (dependsOn in skiff.yaml): its <NAME>_URL variable. */
export function dependencyURL(name: string, env: Record<string, string | undefined> = process.env): string {
  const key = `${name.toUpperCase().replaceAll('-', '_')}_URL`;
  const url = env[key];
  if (!url) throw new Error(`${key} is not set: add ${name} to dependsOn in skiff.yaml`);
  return url.replace(/\/$/, '');
}

/** emitEvent sends a CloudEvent of type from source with JSON data to K_SINK, in binary mode and in the current trace; it resolves once the relay stored it on the bus. */
export async function emitEvent(ev: { type: string; source: string; data?: unknown; sink?: string }): Promise<void> {
  const sink = ev.sink ?? process.env.K_SINK;
  if (!sink) throw new Error('K_SINK is not set: the project has no events in skiff.yaml');
  const res = await tracedFetch(sink, {
    method: 'POST',
    headers: {
      'ce-specversion': '1.0',
      'ce-id': crypto.randomUUID(),
      'ce-source': ev.source,
      'ce-type': ev.type,
      'ce-time': new Date().toISOString(),
      'content-type': 'application/json',
    },
    body: JSON.stringify(ev.data ?? null),
  });
  if (!res.ok) throw new Error(`sending a ${ev.type} event: K_SINK answered ${res.status}: ${(await res.text()).slice(0, 512)}`);
}

/** spansFromEnv is otel.ts's exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set, else undefined: the OpenTelemetry SDK is not even loaded. */
export function spansFromEnv(env: Record<string, string | undefined> = process.env, logger?: { info(msg: string, attrs?: Record<string, unknown>): void }): Spans | undefined {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT) return undefined;
  const { setupOTLP } = require('./otel') as typeof import('./otel');
  const serviceName = env.OTEL_SERVICE_NAME || (require('../package.json') as { name: string }).name;
  logger?.info('exporting spans over OTLP', { endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT });
  return setupOTLP({ serviceName });
}

// The plumbing every workload needs: configuration from the environment,
// JSON logs on stdout, liveness and readiness probes and graceful shutdown,
// and every request in its W3C trace (trace.ts).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Spans } from './otel';
import { continueTrace, currentTrace, runInTrace, sampled, spansFromEnv } from './trace';

const LEVELS = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40 } as const;
export type Level = keyof typeof LEVELS;

export interface Config {
  port: number;
  logLevel: Level;
  shutdownTimeoutMs: number;
}

export type Env = Record<string, string | undefined>;

/** An error that maps to an HTTP status. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** parseDuration reads "10", "10s" or "500ms" as milliseconds. */
export function parseDuration(name: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(value.trim());
  if (!m) throw new Error(`${name}=${value} is not a duration such as 10s or 500ms`);
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}

/** loadConfig reads PORT, LOG_LEVEL and SHUTDOWN_TIMEOUT from env. */
export function loadConfig(env: Env, defaultPort: number): Config {
  const cfg: Config = { port: defaultPort, logLevel: 'INFO', shutdownTimeoutMs: 10000 };
  if (env.PORT) {
    const port = Number(env.PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(`PORT=${env.PORT} is not a port number`);
    }
    cfg.port = port;
  }
  if (env.LOG_LEVEL) {
    const level = env.LOG_LEVEL.toUpperCase();
    if (!(level in LEVELS)) throw new Error(`LOG_LEVEL=${env.LOG_LEVEL} is not one of debug, info, warn, error`);
    cfg.logLevel = level as Level;
  }
  if (env.SHUTDOWN_TIMEOUT) cfg.shutdownTimeoutMs = parseDuration('SHUTDOWN_TIMEOUT', env.SHUTDOWN_TIMEOUT);
  return cfg;
}

export type Attrs = Record<string, unknown>;
export interface Logger {
  debug(msg: string, attrs?: Attrs): void;
  info(msg: string, attrs?: Attrs): void;
  warn(msg: string, attrs?: Attrs): void;
  error(msg: string, attrs?: Attrs): void;
}

/** createLogger writes one JSON object per line: time, level, msg, then fields, trace_id while a request is handled, and attributes. */
export function createLogger(opts: { level?: Level; stream?: { write(s: string): unknown }; fields?: Attrs } = {}): Logger {
  const { level = 'INFO', stream = process.stdout, fields = {} } = opts;
  const at = (lvl: Level) => (msg: string, attrs: Attrs = {}) => {
    if (LEVELS[lvl] < LEVELS[level]) return;
    const trace = currentTrace();
    const traceId = trace ? { trace_id: trace.traceId } : {};
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields, ...traceId, ...attrs })}\n`);
  };
  return { debug: at('DEBUG'), info: at('INFO'), warn: at('WARN'), error: at('ERROR') };
}

export function sendJSON(res: http.ServerResponse, status: number, value: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** readBody collects a request body up to limit bytes. */
export function readBody(req: http.IncomingMessage, limit = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export type App = (req: http.IncomingMessage, res: http.ServerResponse) => unknown;

export interface Server {
  server: http.Server;
  listen(port: number, host?: string): Promise<AddressInfo>;
  shutdown(timeoutMs?: number): Promise<void>;
}

/** createServer serves app, each request in its trace and logged with its trace_id when sampled or failed (and a span exported with spans, see spansFromEnv), and GET /healthz (liveness) and GET /readyz (readiness, 503 once shutdown began), unlogged. */
export function createServer(app: App, { logger, spans }: { logger: Logger; spans?: Spans }): Server {
  let ready = false;
  let closing = false;
  const server = http.createServer((req, res) => {
    // Once shutdown began, a keep-alive connection is closed as soon as its
    // response is done, so draining does not wait for idle clients.
    res.on('finish', () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    if (closing) res.setHeader('Connection', 'close');
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (path === '/healthz') return sendJSON(res, 200, { status: 'ok' });
      if (path === '/readyz') return sendJSON(res, ready ? 200 : 503, { status: ready ? 'ready' : 'shutting down' });
    }
    // The app runs in the request's trace; its line is logged once answered.
    const trace = continueTrace(req.headers);
    const start = process.hrtime.bigint();
    const endSpan = spans?.startSpan(trace, `${req.method} ${path}`, { 'http.request.method': req.method ?? '', 'url.path': path });
    res.on('close', () => {
      endSpan?.(res.statusCode);
      const durationMs = Number(process.hrtime.bigint() - start) / 1e6;
      if (!sampled(trace) && res.statusCode < 500) return; // trace.ts: sampled traces and failures only
      runInTrace(trace, () => logger.info('request', { method: req.method, path, status: res.statusCode, duration_ms: durationMs }));
    });
    void runInTrace(trace, () =>
      Promise.resolve()
        .then(() => app(req, res))
        .catch((err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          logger.error('request failed', { method: req.method, path, error: message });
          if (res.headersSent) {
            res.destroy();
          } else if (err instanceof HttpError) {
            sendJSON(res, err.status, { error: message });
          } else {
            sendJSON(res, 500, { error: 'internal error' });
          }
        }),
    );
  });
  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          ready = true;
          resolve(server.address() as AddressInfo);
        });
      });
    },
    shutdown(timeoutMs = 10000) {
      ready = false;
      closing = true;
      return new Promise((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/** runMain starts app on the configured port and shuts it down gracefully on SIGTERM or SIGINT, exiting 0 once drained and onShutdown is done. */
export async function runMain(app: App, cfg: Config, logger: Logger, opts: { onShutdown?: () => unknown } = {}): Promise<Server> {
  const spans = spansFromEnv(process.env, logger);
  const srv = createServer(app, { logger, spans });
  const addr = await srv.listen(cfg.port);
  logger.info('listening', { addr: `${addr.address}:${addr.port}` });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info('shutting down', { signal, timeoutMs: cfg.shutdownTimeoutMs });
      void srv.shutdown(cfg.shutdownTimeoutMs)
        .then(() => opts.onShutdown?.())
        .then(() => spans?.shutdown())
        .catch((err: unknown) => logger.error('shutdown hook failed', { error: err instanceof Error ? err.message : String(err) }))
        .then(() => {
          logger.info('stopped');
          process.exit(0);
        });
    });
  }
  return srv;
}

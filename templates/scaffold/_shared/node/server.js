'use strict';
// The plumbing every workload needs: configuration from the environment,
// JSON logs on stdout, liveness and readiness probes and graceful shutdown,
// and every request in its W3C trace (trace.js).
const http = require('node:http');
const { continueTrace, currentTrace, runInTrace, sampled, spansFromEnv } = require('./trace');

const LEVELS = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40 };

// parseDuration reads "10", "10s" or "500ms" as milliseconds.
function parseDuration(name, value) {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(String(value).trim());
  if (!m) throw new Error(`${name}=${value} is not a duration such as 10s or 500ms`);
  return m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000;
}

// loadConfig reads the common settings (PORT, LOG_LEVEL, SHUTDOWN_TIMEOUT)
// from env; defaults fills in anything else the workload needs.
function loadConfig(env, defaults) {
  const cfg = {
    port: 8080,
    logLevel: 'INFO',
    shutdownTimeoutMs: 10000,
    ...defaults,
  };
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
    cfg.logLevel = level;
  }
  if (env.SHUTDOWN_TIMEOUT) cfg.shutdownTimeoutMs = parseDuration('SHUTDOWN_TIMEOUT', env.SHUTDOWN_TIMEOUT);
  return cfg;
}

// createLogger writes one JSON object per line: time, level, msg, then the
// logger's fields, trace_id while a request is handled, and the call's
// attributes.
function createLogger({ level = 'INFO', stream = process.stdout, fields = {} } = {}) {
  const min = LEVELS[level] ?? LEVELS.INFO;
  const at = (lvl) => (msg, attrs = {}) => {
    if (LEVELS[lvl] < min) return;
    const trace = currentTrace();
    const traceId = trace ? { trace_id: trace.traceId } : {};
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields, ...traceId, ...attrs })}\n`);
  };
  return { debug: at('DEBUG'), info: at('INFO'), warn: at('WARN'), error: at('ERROR') };
}

function sendJSON(res, status, value, headers = {}) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

// readBody collects a request body up to limit bytes.
function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(Object.assign(new Error('request body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// createServer serves app, each request in its trace and logged with its
// trace_id when sampled or failed (and a span exported with spans, see spansFromEnv), and
// GET /healthz (liveness) and GET /readyz (readiness, 503 once shutdown
// began) itself, unlogged.
function createServer(app, { logger, spans }) {
  let ready = false;
  let closing = false;
  const server = http.createServer((req, res) => {
    // Once shutdown began, a keep-alive connection is closed as soon as its
    // response is done, so draining does not wait for idle clients.
    res.on('finish', () => {
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    if (closing) res.setHeader('Connection', 'close');
    const path = req.url.split('?')[0];
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (path === '/healthz') return sendJSON(res, 200, { status: 'ok' });
      if (path === '/readyz') return sendJSON(res, ready ? 200 : 503, { status: ready ? 'ready' : 'shutting down' });
    }
    // The app runs in the request's trace; its line is logged once answered.
    const trace = continueTrace(req.headers);
    const start = process.hrtime.bigint();
    const endSpan = spans && spans.startSpan(trace, `${req.method} ${path}`, { 'http.request.method': req.method, 'url.path': path });
    res.on('close', () => {
      if (endSpan) endSpan(res.statusCode);
      const durationMs = Number(process.hrtime.bigint() - start) / 1e6;
      if (!sampled(trace) && res.statusCode < 500) return; // trace.js: sampled traces and failures only
      runInTrace(trace, () => logger.info('request', { method: req.method, path, status: res.statusCode, duration_ms: durationMs }));
    });
    runInTrace(trace, () =>
      Promise.resolve()
        .then(() => app(req, res))
        .catch((err) => {
          logger.error('request failed', { method: req.method, path, error: String(err && err.message) });
          if (!res.headersSent) sendJSON(res, err.status || 500, { error: err.status ? err.message : 'internal error' });
          else res.destroy();
        }),
    );
  });
  return {
    server,
    // listen resolves with the bound address once the server accepts requests.
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          ready = true;
          resolve(server.address());
        });
      });
    },
    // shutdown reports not ready, stops accepting connections and resolves
    // when in-flight requests are done, or cuts them after timeoutMs.
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

// runMain starts app on the configured port and shuts it down gracefully on
// SIGTERM or SIGINT, exiting 0 once drained and onShutdown (if given) is done.
async function runMain(app, cfg, logger, { onShutdown } = {}) {
  const spans = spansFromEnv(process.env, logger);
  const srv = createServer(app, { logger, spans });
  const addr = await srv.listen(cfg.port);
  logger.info('listening', { addr: `${addr.address}:${addr.port}` });
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, async () => {
      logger.info('shutting down', { signal, timeoutMs: cfg.shutdownTimeoutMs });
      await srv.shutdown(cfg.shutdownTimeoutMs);
      try {
        if (onShutdown) await onShutdown();
        if (spans) await spans.shutdown();
      } catch (err) {
        logger.error('shutdown hook failed', { error: String(err && err.message) });
      }
      logger.info('stopped');
      process.exit(0);
    });
  }
  return srv;
}

module.exports = { loadConfig, createLogger, createServer, runMain, sendJSON, readBody, parseDuration };

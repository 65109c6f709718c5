'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { loadConfig, createLogger, createServer } = require('../server');

function memoryLogger(level = 'DEBUG') {
  const lines = [];
  const logger = createLogger({ level, stream: { write: (s) => lines.push(s) } });
  return { logger, lines };
}

test('loadConfig reads the environment', () => {
  const cfg = loadConfig({ PORT: '9090', LOG_LEVEL: 'debug', SHUTDOWN_TIMEOUT: '500ms' }, { port: 8080 });
  assert.equal(cfg.port, 9090);
  assert.equal(cfg.logLevel, 'DEBUG');
  assert.equal(cfg.shutdownTimeoutMs, 500);
  assert.equal(loadConfig({}, { port: 8080 }).port, 8080);
  assert.throws(() => loadConfig({ PORT: 'http' }, {}), /PORT/);
  assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }, {}), /LOG_LEVEL/);
  assert.throws(() => loadConfig({ SHUTDOWN_TIMEOUT: 'soon' }, {}), /SHUTDOWN_TIMEOUT/);
});

test('logs are one JSON object per line', () => {
  const { logger, lines } = memoryLogger('INFO');
  logger.debug('hidden');
  logger.info('hello', { n: 1 });
  assert.equal(lines.length, 1);
  assert.ok(lines[0].endsWith('\n'));
  const rec = JSON.parse(lines[0]);
  assert.equal(rec.level, 'INFO');
  assert.equal(rec.msg, 'hello');
  assert.equal(rec.n, 1);
  assert.ok(!Number.isNaN(Date.parse(rec.time)));
});

test('health, readiness and graceful shutdown', async () => {
  const { logger } = memoryLogger();
  let release;
  let started;
  const inFlight = new Promise((resolve) => { started = resolve; });
  const app = (req, res) => {
    started();
    return new Promise((resolve) => {
      release = () => {
        res.end('done');
        resolve();
      };
    });
  };
  const srv = createServer(app, { logger });
  const { port } = await srv.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/readyz`)).status, 200);

  const slow = fetch(`${base}/slow`).then((r) => r.text());
  await inFlight;
  const stopped = srv.shutdown(5000);
  release();
  assert.equal(await slow, 'done');
  await stopped;
  assert.equal(srv.server.listening, false);
});

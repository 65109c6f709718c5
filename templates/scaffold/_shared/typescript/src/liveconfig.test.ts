import test, { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLiveConfig, type LiveConfigOptions, type Values } from './liveconfig';
import type { Attrs, Logger } from './server';

const ENV = { GREETING: 'from env', SKIFF_CONFIG_MAP: 'demo-config', POD_NAMESPACE: 'demo' };
const TIMEOUT_MS = 5000; // how long to wait for something the test expects

function noBlankGreeting(values: Values): void {
  if ('GREETING' in values && !values.GREETING.trim()) throw new Error('GREETING must not be blank');
}

interface Waiter<T> {
  promise: Promise<T>;
  poke(): boolean;
}

// waiter resolves once ready() returns something, checking whenever poke()
// is called; it rejects after TIMEOUT_MS saying what it waited for.
function waiter<T>(what: string, ready: () => T | undefined): Waiter<T> {
  let poke = () => false;
  const promise = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
    poke = () => {
      const value = ready();
      if (value === undefined) return false;
      clearTimeout(timer);
      resolve(value);
      return true;
    };
  });
  return { promise, poke };
}

// Queue hands out what is pushed, in order, to whoever awaits next().
class Queue<T> {
  private readonly items: T[] = [];
  private waiting: Array<Waiter<T>> = [];

  constructor(private readonly what: string) {}

  readonly push = (item: T): void => {
    this.items.push(item);
    this.waiting = this.waiting.filter((w) => !w.poke());
  };

  next(): Promise<T> {
    const w = waiter(this.what, () => (this.items.length ? this.items.shift() : undefined));
    if (!w.poke()) this.waiting.push(w);
    return w.promise;
  }
}

interface LogRecord {
  level: string;
  msg: string;
  attrs: Attrs;
}

// recordingLogger keeps what is logged and lets a test wait for a message.
function recordingLogger() {
  const records: LogRecord[] = [];
  let waiting: Array<Waiter<Attrs>> = [];
  const at = (level: string) => (msg: string, attrs: Attrs = {}) => {
    records.push({ level, msg, attrs });
    waiting = waiting.filter((w) => !w.poke());
  };
  const named = (msg: string): Attrs[] => records.filter((r) => r.msg === msg).map((r) => r.attrs);
  const logger: Logger = { debug: at('DEBUG'), info: at('INFO'), warn: at('WARN'), error: at('ERROR') };
  return {
    logger,
    records,
    named,
    // waitFor resolves with the attributes of the first record with msg.
    waitFor(msg: string): Promise<Attrs> {
      const w = waiter(`${JSON.stringify(msg)} in the log`, () => named(msg)[0]);
      if (!w.poke()) waiting.push(w);
      return w.promise;
    },
  };
}

interface EventOptions {
  data?: Values;
  version?: string;
  code?: number;
}

function eventLine(type: string, { data, version = '1', code }: EventOptions = {}): string {
  const object = type === 'ERROR'
    ? { kind: 'Status', status: 'Failure', code, message: 'too old resource version' }
    : { kind: 'ConfigMap', metadata: { name: 'demo-config', resourceVersion: version }, ...(data && { data }) };
  return `${JSON.stringify({ type, object })}\n`;
}

// Watch is one open watch request; the test writes its events.
class Watch {
  readonly query: Record<string, string>;

  constructor(url: URL, readonly headers: http.IncomingHttpHeaders, private readonly res: http.ServerResponse) {
    this.query = Object.fromEntries(url.searchParams);
  }

  send(type: string, opts?: EventOptions): void {
    this.sendRaw(eventLine(type, opts));
  }

  sendRaw(text: string): void {
    this.res.write(text);
  }

  end(): void {
    this.res.end();
  }
}

interface FakeAPI {
  url: string;
  status: number;
  configMap: { data: Values; version: string };
  gets: Queue<http.IncomingHttpHeaders>;
  watches: Queue<Watch>;
}

// fakeAPI is a Kubernetes API server holding one ConfigMap, demo/demo-config:
// a GET answers it (or api.status), each watch is a stream the test writes
// to through the Watch it takes from api.watches.next().
async function fakeAPI(t: TestContext, data: Values, version = '1'): Promise<FakeAPI> {
  const api: FakeAPI = { url: '', status: 200, configMap: { data, version }, gets: new Queue('a GET'), watches: new Queue('a watch') };
  const reply = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname === '/api/v1/namespaces/demo/configmaps' && url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      api.watches.push(new Watch(url, req.headers, res));
    } else if (url.pathname === '/api/v1/namespaces/demo/configmaps/demo-config') {
      api.gets.push(req.headers);
      const { data: current, version: rv } = api.configMap;
      if (api.status === 200) {
        reply(res, 200, { kind: 'ConfigMap', metadata: { name: 'demo-config', resourceVersion: rv }, data: current });
      } else {
        reply(res, api.status, { kind: 'Status', code: api.status, message: 'the fake says no' });
      }
    } else {
      reply(res, 404, { kind: 'Status', code: 404, message: `no ${url.pathname}` });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return api;
}

// setup makes a temporary folder with a token file and a config folder,
// and returns a function that makes a live config on api (null: files only)
// with a queue of the snapshots its onChange gets.
function setup(t: TestContext) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'liveconfig-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const tokenFile = path.join(tmp, 'token');
  fs.writeFileSync(tokenFile, 'token-1');
  const dir = path.join(tmp, 'config');
  fs.mkdirSync(dir);
  const log = recordingLogger();
  const make = (api: FakeAPI | null, overrides: LiveConfigOptions = {}) => {
    const live = createLiveConfig({
      logger: log.logger, check: noBlankGreeting, env: ENV, apiURL: api ? api.url : '', tokenFile, dir, ...overrides,
    });
    const changes = new Queue<Values>('a config change');
    live.onChange(changes.push);
    t.after(() => live.close());
    return { live, changes };
  };
  return { log, dir, tokenFile, make };
}

test('reads the env until a snapshot arrives', async (t) => {
  const { make } = setup(t);
  const { live } = make(await fakeAPI(t, { GREETING: 'Hi' }));
  assert.equal(live.get('GREETING', 'Hello'), 'from env');
  assert.equal(live.get('MISSING', 'default'), 'default');
  assert.equal(live.get('MISSING'), undefined);

  const off = createLiveConfig({ env: { GREETING: 'plain' } });
  off.start(); // no SKIFF_CONFIG_MAP: nothing to follow
  assert.equal(off.get('GREETING', 'Hello'), 'plain');
  await off.close();
});

test('GET then watch delivers changes', async (t) => {
  const { log, make } = setup(t);
  const api = await fakeAPI(t, { GREETING: 'Hi' }, '5');
  const { live, changes } = make(api);
  live.start();
  assert.deepEqual(await changes.next(), { GREETING: 'Hi' });
  assert.equal(live.get('GREETING', 'Hello'), 'Hi');
  const get = await api.gets.next();
  assert.equal(get.authorization, 'Bearer token-1');
  assert.equal(get.accept, 'application/json');

  const watch = await api.watches.next();
  assert.deepEqual(watch.query, {
    fieldSelector: 'metadata.name=demo-config', watch: 'true', resourceVersion: '5', allowWatchBookmarks: 'true', timeoutSeconds: '290',
  });
  // Lines may arrive cut anywhere: the second one comes in two writes.
  const second = eventLine('MODIFIED', { data: { COLOR: 'blue' }, version: '7' });
  watch.sendRaw(eventLine('MODIFIED', { data: { GREETING: 'Howdy', COLOR: 'blue' }, version: '6' }) + second.slice(0, 20));
  assert.deepEqual(await changes.next(), { GREETING: 'Howdy', COLOR: 'blue' });
  assert.equal(live.get('GREETING', 'Hello'), 'Howdy');

  watch.sendRaw(second.slice(20));
  assert.deepEqual(await changes.next(), { COLOR: 'blue' });
  assert.equal(live.get('GREETING', 'Hello'), 'Hello', 'a removed key is gone, not read from the env');

  const updates = log.named('config updated');
  assert.deepEqual(updates.map((u) => u.keys), [['GREETING'], ['COLOR', 'GREETING'], ['GREETING']]);
  assert.equal(updates[updates.length - 1].resourceVersion, '7');
  assert.ok(!JSON.stringify(log.records).includes('Howdy'), 'values must not be logged');
});

test('a blank GREETING is rejected and the last good one kept', async (t) => {
  const { log, make } = setup(t);
  const api = await fakeAPI(t, { GREETING: 'Hi' });
  const { live, changes } = make(api);
  live.start();
  await changes.next();
  const watch = await api.watches.next();
  watch.send('MODIFIED', { data: { GREETING: '  ' }, version: '2' });
  const rejected = await log.waitFor('config update rejected');
  assert.equal(rejected.reason, 'GREETING must not be blank');
  assert.equal(live.get('GREETING', 'Hello'), 'Hi');

  watch.send('MODIFIED', { data: { GREETING: 'Hey' }, version: '3' });
  assert.deepEqual(await changes.next(), { GREETING: 'Hey' });
});

test('survives a line that is not JSON and a callback that throws', async (t) => {
  const { log, make } = setup(t);
  const api = await fakeAPI(t, { GREETING: 'Hi' }, '5');
  const { live, changes } = make(api);
  live.onChange(() => {
    throw new Error('callback bug');
  });
  live.start();
  await changes.next();
  assert.equal((await log.waitFor('config change callback failed')).error, 'callback bug');

  const watch = await api.watches.next();
  watch.send('BOOKMARK', { version: '8' });
  watch.sendRaw('this is not json\n');
  const again = await api.watches.next();
  assert.match(String((await log.waitFor('config watch failed')).error), /not an event/);
  assert.equal(again.query.resourceVersion, '8', 'the watch resumes from the bookmark');
  again.send('MODIFIED', { data: { GREETING: 'Back' }, version: '9' });
  assert.deepEqual(await changes.next(), { GREETING: 'Back' });
  assert.equal(live.get('GREETING'), 'Back');
});

test('an expired watch (ERROR 410) lists again', async (t) => {
  const { make } = setup(t);
  const api = await fakeAPI(t, { GREETING: 'Hi' }, '5');
  const { live, changes } = make(api);
  live.start();
  await changes.next();
  await api.gets.next();
  const watch = await api.watches.next();

  api.configMap = { data: { GREETING: 'Yo' }, version: '20' };
  watch.send('ERROR', { code: 410 });
  await api.gets.next();
  assert.deepEqual(await changes.next(), { GREETING: 'Yo' });
  assert.equal((await api.watches.next()).query.resourceVersion, '20');
});

test('falls back to the files when the API fails', async (t) => {
  const { log, dir, make } = setup(t);
  fs.writeFileSync(path.join(dir, 'GREETING'), 'from files');
  fs.writeFileSync(path.join(dir, '.hidden'), 'no');
  fs.mkdirSync(path.join(dir, 'sub'));
  const api = await fakeAPI(t, { GREETING: 'from api' });
  api.status = 500;
  const { live, changes } = make(api, { backoffMinMs: 10 });
  live.start();
  assert.deepEqual(await changes.next(), { GREETING: 'from files' });
  assert.match(String((await log.waitFor('config watch failed')).error), /500/);

  for (let i = 0; i < 3; i += 1) await api.gets.next(); // retried...
  assert.equal(log.named('config watch failed').length, 1, '...and logged once');

  api.status = 200;
  assert.deepEqual(await changes.next(), { GREETING: 'from api' });
});

test('the files never undo the API', async (t) => {
  // The files lag the API: when the API fails after a change, the older
  // files must not bring the old value back; a later change of them counts.
  const { dir, make } = setup(t);
  const greeting = path.join(dir, 'GREETING');
  fs.writeFileSync(greeting, 'Hi');
  const api = await fakeAPI(t, { GREETING: 'Hi' });
  const { live, changes } = make(api, { backoffMinMs: 10, backoffMaxMs: 10 });
  live.start();
  await changes.next();
  await api.gets.next();
  const watch = await api.watches.next();
  watch.send('MODIFIED', { data: { GREETING: 'New' }, version: '2' });
  assert.deepEqual(await changes.next(), { GREETING: 'New' });

  api.status = 503;
  watch.send('ERROR', { code: 500 }); // fails: the files are read, then the GET fails
  for (let i = 0; i < 3; i += 1) await api.gets.next();
  assert.equal(live.get('GREETING'), 'New');
  // Whole or not at all, as the kubelet swaps the files (the dot keeps
  // the temporary file out of the config).
  const tmp = path.join(dir, '.GREETING.new');
  fs.writeFileSync(tmp, 'Newer');
  fs.renameSync(tmp, greeting);
  assert.deepEqual(await changes.next(), { GREETING: 'Newer' });
});

test('without an API polls the files', async (t) => {
  // The kubelet's layout: KEY -> ..data/KEY, ..data -> a dated folder.
  const { dir, make } = setup(t);
  for (const [name, text] of [['..v1', 'one'], ['..v2', 'two']]) {
    fs.mkdirSync(path.join(dir, name));
    fs.writeFileSync(path.join(dir, name, 'GREETING'), text);
  }
  fs.symlinkSync('..v1', path.join(dir, '..data'));
  fs.symlinkSync('..data/GREETING', path.join(dir, 'GREETING'));
  const { live, changes } = make(null, { pollIntervalMs: 20 });
  live.start();
  assert.deepEqual(await changes.next(), { GREETING: 'one' });

  fs.symlinkSync('..v2', path.join(dir, '..data_tmp'));
  fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  assert.deepEqual(await changes.next(), { GREETING: 'two' });
  assert.equal(live.get('GREETING'), 'two');
});

test('reads the token for every request', async (t) => {
  const { tokenFile, make } = setup(t);
  const api = await fakeAPI(t, { GREETING: 'Hi' });
  const { live } = make(api, { backoffMinMs: 10 });
  live.start();
  assert.equal((await api.gets.next()).authorization, 'Bearer token-1');
  const watch = await api.watches.next();
  assert.equal(watch.headers.authorization, 'Bearer token-1');

  fs.writeFileSync(tokenFile, 'token-2\n');
  watch.end(); // as at timeoutSeconds: watch again
  const again = await api.watches.next();
  assert.equal(again.headers.authorization, 'Bearer token-2');
  assert.equal(again.query.resourceVersion, '1');
});

test('close ends an open watch and a backoff promptly', async (t) => {
  const { log, make } = setup(t);
  const api = await fakeAPI(t, { GREETING: 'Hi' });
  const { live } = make(api);
  live.start();
  await api.watches.next();
  let began = Date.now();
  await live.close();
  assert.ok(Date.now() - began < 2000, 'close waited for the watch');

  const failing = await fakeAPI(t, {});
  failing.status = 503;
  const { live: backingOff } = make(failing, { backoffMinMs: 30000 });
  backingOff.start();
  await failing.gets.next();
  await log.waitFor('config watch failed');
  began = Date.now();
  await backingOff.close();
  assert.ok(Date.now() - began < 2000, 'close waited for the backoff');
});

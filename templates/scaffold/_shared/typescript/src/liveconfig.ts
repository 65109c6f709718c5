// Live configuration: the workload's ConfigMap, kept current while the
// process runs, so a config change needs no restart.
//
//   const live = createLiveConfig({ logger, check });
//   live.start();                        // follows the ConfigMap in the background
//   const greeting = live.get('GREETING', 'Hello');
//   live.onChange((values) => { ... });
//   await live.close();
//
// With `liveConfig: true` in skiff.yaml the chart sets SKIFF_CONFIG_MAP (the
// ConfigMap's name), SKIFF_CONFIG_FILES (the same ConfigMap mounted as files)
// and POD_NAMESPACE, and lets the pod get and watch that one ConfigMap.
// Without SKIFF_CONFIG_MAP, live config is off and get() reads the env.
//
// It GETs the ConfigMap from the Kubernetes API, then watches it. When the
// API fails it reads the mounted files (the kubelet refreshes them only every
// minute or so) and retries with a backoff; with no API at all it polls the
// files. Node's standard library only; its timers and sockets never keep the
// process alive.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type { Env, Logger } from './server';

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';
const WATCH_TIMEOUT_S = 290; // how long the API server keeps one watch open
const WATCH_IDLE_MS = 330000; // a watch silent for longer than this is dead
const GET_IDLE_MS = 10000; // connecting, and each read of a GET
const MAX_LINE = 4 << 20; // a ConfigMap is at most 1 MiB; longer lines are garbage

/** Values is one snapshot of the ConfigMap: key to value. */
export type Values = Record<string, string>;

/** Check rejects a snapshot by throwing or returning an Error (or a reason). */
export type Check = (values: Values) => unknown;

export interface LiveConfigOptions {
  /** The ConfigMap's name (default $SKIFF_CONFIG_MAP; empty: live config off). */
  name?: string;
  /** Its namespace (default $POD_NAMESPACE, else "default"). */
  namespace?: string;
  /** The ConfigMap mounted as files (default $SKIFF_CONFIG_FILES). */
  dir?: string;
  /** The API server (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; empty: none). */
  apiURL?: string;
  tokenFile?: string;
  caFile?: string;
  env?: Env;
  logger?: Logger;
  check?: Check;
  pollIntervalMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
}

export interface LiveConfig {
  /** The current value of key: from the last accepted snapshot, or from the env until one is accepted. */
  get(key: string): string | undefined;
  get(key: string, fallback: string): string;
  /** Calls callback with every key after each accepted snapshot that differs from the one before. */
  onChange(callback: (values: Values) => unknown): void;
  /** Starts following the ConfigMap in the background; does nothing when live config is off. */
  start(): void;
  /** Ends the background work (a request in flight, a backoff); get() keeps answering. */
  close(): Promise<void>;
}

interface ConfigMap {
  data: Values | null; // null: not a ConfigMap
  version: string;
}

interface WatchEvent {
  type?: unknown;
  object: Record<string, unknown>;
}

interface Seen {
  lines: number;
  events: number;
  bad: string | null; // the line that is not an event
}

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Gone: the resourceVersion expired (410); list again. */
class Gone extends Error {}

/** StatusError: the API answered with a status that is not 2xx. */
class StatusError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function createLiveConfig(options: LiveConfigOptions = {}): LiveConfig {
  const env: Env = options.env ?? process.env;
  const logger = options.logger ?? quiet;
  const check = options.check;
  const name = options.name ?? env.SKIFF_CONFIG_MAP ?? '';
  const namespace = options.namespace ?? (env.POD_NAMESPACE || 'default');
  const dir = options.dir ?? env.SKIFF_CONFIG_FILES ?? '';
  const apiURL = (options.apiURL ?? inClusterURL(env)).replace(/\/+$/, '');
  const tokenFile = options.tokenFile ?? `${SERVICE_ACCOUNT}/token`;
  const caFile = options.caFile ?? `${SERVICE_ACCOUNT}/ca.crt`;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const backoffMinMs = options.backoffMinMs ?? 1000;
  const backoffMaxMs = options.backoffMaxMs ?? 30000;

  let values: Values | null = null; // the accepted snapshot; null: read the env
  let rejected: Values | null = null; // the last rejected snapshot, not to warn twice
  let files: Values | null = null; // the mounted files when last read
  const callbacks: Array<(values: Values) => unknown> = [];
  const logged = new Set<string>(); // failure texts logged since the last success
  let closed = false;
  let loop: Promise<void> | null = null; // the background loop
  let inFlight: http.ClientRequest | null = null; // the request in flight, for close()
  let wake: (() => void) | null = null; // ends the current sleep, for close()

  function get(key: string): string | undefined;
  function get(key: string, fallback: string): string;
  function get(key: string, fallback?: string): string | undefined {
    const source: Env = values ?? env;
    return Object.prototype.hasOwnProperty.call(source, key) && source[key] !== undefined ? source[key] : fallback;
  }

  function onChange(callback: (values: Values) => unknown): void {
    callbacks.push(callback);
  }

  function start(): void {
    if (!name || loop || closed) return;
    let follow: () => Promise<void>;
    if (apiURL) follow = followAPI;
    else if (dir) follow = pollFiles;
    else {
      logger.warn('config watch failed', { error: 'no Kubernetes API and no SKIFF_CONFIG_FILES to read' });
      return;
    }
    logger.info('config watch started', { configMap: name, namespace, source: apiURL || dir });
    loop = follow().catch((err: unknown) => logger.error('config watch stopped', { error: errorText(err) }));
  }

  function close(): Promise<void> {
    closed = true;
    inFlight?.destroy();
    wake?.();
    return loop ?? Promise.resolve();
  }

  // The snapshot.

  function offer(next: Values, version: string): void {
    let reason: string | undefined;
    try {
      const verdict = check ? check({ ...next }) : undefined;
      if (verdict instanceof Error) reason = verdict.message;
      else if (typeof verdict === 'string' && verdict) reason = verdict;
    } catch (err) {
      reason = errorText(err);
    }
    if (reason !== undefined) {
      if (!sameValues(next, rejected)) {
        rejected = { ...next };
        logger.warn('config update rejected', { reason, resourceVersion: version });
      }
      return;
    }
    rejected = null;
    if (sameValues(next, values)) return;
    const old: Values = values ?? {};
    values = { ...next };
    const keys = [...new Set([...Object.keys(old), ...Object.keys(next)])].filter((k) => old[k] !== next[k]).sort();
    logger.info('config updated', { keys, resourceVersion: version });
    for (const callback of [...callbacks]) {
      try {
        const result = callback({ ...values });
        if (result instanceof Promise) result.catch(callbackFailed);
      } catch (err) {
        callbackFailed(err);
      }
    }
  }

  function callbackFailed(err: unknown): void {
    logger.error('config change callback failed', { error: errorText(err) });
  }

  // readFiles offers the files in dir as a snapshot: regular files (through
  // symlinks) whose names do not start with a dot. Only when they are all
  // there is, or when the kubelet changed them since the last read: the
  // files lag the API by a minute or so and must not undo what it said.
  function readFiles(): void {
    if (!dir) return;
    const read: Values = {};
    try {
      for (const entry of fs.readdirSync(dir).sort()) {
        const file = path.join(dir, entry);
        if (entry.startsWith('.') || !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) continue;
        read[entry] = fs.readFileSync(file, 'utf8');
      }
    } catch (err) { // e.g. the kubelet swapping ..data: the next read gets it
      warnOnce(`reading ${dir}: ${errorText(err)}`);
      return;
    }
    const fresh = values === null || (files !== null && !sameValues(files, read));
    files = read;
    if (fresh) offer(read, 'files');
  }

  async function pollFiles(): Promise<void> {
    while (!closed) {
      readFiles();
      await sleep(pollIntervalMs);
    }
  }

  // The API.

  async function followAPI(): Promise<void> {
    let delay = backoffMinMs;
    while (!closed) {
      try {
        const version = await load();
        delay = backoffMinMs;
        logged.clear();
        await watch(version);
      } catch (err) {
        if (closed) return;
        if (err instanceof Gone) continue;
        warnOnce(errorText(err));
        readFiles();
        await sleep(delay);
        delay = Math.min(delay * 2, backoffMaxMs);
      }
    }
  }

  // load is step 1: it GETs the ConfigMap, offers its data and returns its
  // resourceVersion.
  async function load(): Promise<string> {
    const where = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(name)}`;
    const res = await request(where, GET_IDLE_MS);
    const body = await readText(res, MAX_LINE);
    let configMap: ConfigMap | null = null;
    try {
      configMap = parseConfigMap(JSON.parse(body));
    } catch {
      // not JSON: handled below
    }
    if (!configMap || configMap.data === null) throw new Error(`GET ${where}: the answer is not a ConfigMap`);
    offer(configMap.data, configMap.version);
    return configMap.version;
  }

  // watch is step 2: it watches from version until the API says the version
  // expired (throws Gone) or something fails (throws).
  async function watch(version: string): Promise<void> {
    let badLines = 0;
    while (!closed) {
      const query = `fieldSelector=metadata.name%3D${encodeURIComponent(name)}&watch=true`
        + `&resourceVersion=${encodeURIComponent(version)}&allowWatchBookmarks=true&timeoutSeconds=${WATCH_TIMEOUT_S}`;
      const began = Date.now();
      let res: http.IncomingMessage;
      try {
        res = await request(`/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps?${query}`, WATCH_IDLE_MS);
      } catch (err) {
        if (err instanceof StatusError && err.status === 410) throw new Gone();
        throw err;
      }
      const seen = await readEvents(res, (event) => {
        version = apply(event, version);
      });
      if (seen.bad !== null) {
        badLines = seen.events > 0 ? 1 : badLines + 1;
        warnOnce(`the watch sent something that is not an event: ${JSON.stringify(seen.bad.slice(0, 200))}`);
        if (badLines > 1) await sleep(backoffMinMs); // the same garbage again: not in a tight loop
      } else if (seen.lines === 0 && Date.now() - began < 1000) {
        await sleep(backoffMinMs); // a watch that ends at once is not one that timed out
      }
    }
    throw new Gone('closed');
  }

  // apply acts on one watch event and returns the resourceVersion to go on from.
  function apply(event: WatchEvent, version: string): string {
    const { type, object } = event;
    if (type === 'ERROR') {
      if (object.code === 410) throw new Gone();
      const message = typeof object.message === 'string' ? object.message : '';
      throw new Error(`the watch failed: ${String(object.code)} ${message}`.trim());
    }
    const configMap = parseConfigMap(object);
    const next = configMap.version || version;
    if (type === 'ADDED' || type === 'MODIFIED') {
      if (configMap.data === null) warnOnce(`the watch sent a ${type} event that is not a ConfigMap`);
      else offer(configMap.data, next);
    } else if (type === 'DELETED') {
      logger.warn('config map deleted, keeping the last values', { configMap: name });
    }
    return next;
  }

  // readEvents reads the watch stream, one JSON event per line, and calls
  // onEvent for each. It resolves when the stream ends or at the first line
  // that is not an event, and rejects when the connection fails or onEvent
  // throws.
  function readEvents(res: http.IncomingMessage, onEvent: (event: WatchEvent) => void): Promise<Seen> {
    return new Promise((resolve, reject) => {
      let buffer = '';
      let lines = 0;
      let events = 0;
      let settled = false;
      const done = (seen: Seen) => finish(() => resolve(seen));
      const fail = (err: unknown) => finish(() => reject(err));
      function finish(settle: () => void): void {
        if (settled) return;
        settled = true;
        res.destroy();
        settle();
      }
      const take = (line: string): boolean => {
        lines += 1;
        const event = parseEvent(line);
        if (!event) {
          done({ lines, events, bad: line });
          return false;
        }
        try {
          onEvent(event);
        } catch (err) {
          fail(err);
          return false;
        }
        events += 1;
        return !settled;
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (settled) return;
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line && !take(line)) return;
        }
        if (buffer.length > MAX_LINE) done({ lines, events, bad: buffer });
      });
      res.on('end', () => {
        const rest = buffer.trim();
        if (rest && !take(rest)) return;
        done({ lines, events, bad: null });
      });
      res.on('error', (err) => fail(new Error(`reading the watch: ${errorText(err)}`)));
      res.on('close', () => fail(new Error('reading the watch: the connection closed')));
    });
  }

  // request GETs where on the API and resolves with the response once it
  // answered 2xx; a status that is not rejects with a StatusError.
  async function request(where: string, idleMs: number): Promise<http.IncomingMessage> {
    let token: string;
    try {
      token = (await fs.promises.readFile(tokenFile, 'utf8')).trim(); // every time: it rotates
    } catch (err) {
      throw new Error(`reading the service account token: ${errorText(err)}`);
    }
    const url = new URL(apiURL);
    let client: typeof http | typeof https;
    let ca: Buffer | undefined;
    if (url.protocol === 'https:') {
      client = https;
      try {
        ca = await fs.promises.readFile(caFile);
      } catch (err) {
        throw new Error(`reading the CA ${caFile}: ${errorText(err)}`);
      }
    } else if (url.protocol === 'http:') {
      client = http;
    } else {
      throw new Error(`the API URL ${apiURL} is not http or https`);
    }
    if (closed) throw new Gone('closed');
    return new Promise((resolve, reject) => {
      const req = client.request({
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port || undefined,
        path: url.pathname.replace(/\/+$/, '') + where,
        method: 'GET',
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
        agent: false,
        ca,
      }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve(res);
          return;
        }
        readText(res, 64 << 10).then((body) => {
          reject(new StatusError(status, `GET ${where.split('?')[0]}: ${status} ${res.statusMessage ?? ''}${statusMessage(body)}`));
        }, reject);
      });
      inFlight = req;
      req.on('socket', (socket) => socket.unref());
      req.setTimeout(idleMs, () => req.destroy(new Error(`${apiURL} sent nothing for ${idleMs / 1000}s`)));
      req.on('error', (err) => reject(new Error(`${apiURL}: ${errorText(err)}`)));
      req.on('close', () => {
        if (inFlight === req) inFlight = null;
      });
      req.end();
    });
  }

  function sleep(ms: number): Promise<void> {
    if (closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (wake === done) wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      wake = done;
    });
  }

  function warnOnce(text: string): void {
    if (logged.has(text)) return;
    logged.add(text);
    logger.warn('config watch failed', { error: text });
  }

  return { get, onChange, start, close };
}

function inClusterURL(env: Env): string {
  let host = env.KUBERNETES_SERVICE_HOST;
  if (!host) return '';
  if (host.includes(':')) host = `[${host}]`; // IPv6
  return `https://${host}:${env.KUBERNETES_SERVICE_PORT || 443}`;
}

/** parseConfigMap returns the data (null: not a ConfigMap; a missing data is empty) and resourceVersion of obj. */
function parseConfigMap(obj: unknown): ConfigMap {
  if (!isObject(obj)) return { data: null, version: '' };
  const meta = obj.metadata;
  const version = isObject(meta) && typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '';
  if (obj.data === undefined || obj.data === null) return { data: {}, version };
  if (!isObject(obj.data) || !Object.values(obj.data).every((v) => typeof v === 'string')) return { data: null, version };
  return { data: Object.fromEntries(Object.entries(obj.data)) as Values, version };
}

/** parseEvent returns the watch event in one line, or null if it is not one. */
function parseEvent(line: string): WatchEvent | null {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return null;
  }
  return isObject(event) && isObject(event.object) ? (event as unknown as WatchEvent) : null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameValues(a: Values | null, b: Values | null): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

/** readText collects a response body up to limit bytes. */
function readText(res: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        res.destroy();
        reject(new Error(`the answer is larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (err) => reject(new Error(`reading the answer: ${errorText(err)}`)));
    res.on('close', () => reject(new Error('reading the answer: the connection closed')));
  });
}

/** statusMessage returns ': message' from a Kubernetes Status body, or ''. */
function statusMessage(body: string): string {
  try {
    const { message } = JSON.parse(body) as { message?: unknown };
    return typeof message === 'string' && message ? `: ${message}` : '';
  } catch {
    return '';
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

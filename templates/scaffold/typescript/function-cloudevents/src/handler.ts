import { CloudEvent, HTTP } from 'cloudevents';
import type { App, Logger } from './server';
import { HttpError, readBody, sendJSON } from './server';

const STRUCTURED = 'application/cloudevents+json';
/** The Content-Types whose data the SDK parses as JSON. */
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8', STRUCTURED, `${STRUCTURED}; charset=utf-8`]);

/** Reply is the data of the events the function answers with. */
export interface Reply {
  message: string;
}

/** checkConfig rejects a live config update that would leave a blank greeting (a GREETING removed from the config falls back to the default). */
export function checkConfig(values: Record<string, string>): void {
  if ('GREETING' in values && !values.GREETING.trim()) throw new Error('GREETING must not be blank');
}

/**
 * fromBinary reads a CloudEvent in HTTP binary mode: its attributes are the ce-* headers, its data the body, parsed when Content-Type is JSON.
 * It reads a request as HTTP.toEvent does, for less: the SDK builds error objects for every event it parses, which a profile under load
 * found to be the handler's largest cost after the socket. The event is validated.
 */
export function fromBinary(headers: Record<string, string | string[] | undefined>, body: string): CloudEvent<unknown> {
  const attrs: Record<string, unknown> = {};
  for (const name in headers) {
    if (name.startsWith('ce-')) attrs[name.slice(3)] = String(headers[name]);
  }
  if (typeof attrs.time === 'string') {
    const t = new Date(attrs.time);
    if (!Number.isNaN(t.getTime())) attrs.time = t.toISOString();
  }
  const type = headers['content-type'];
  let data: unknown = body;
  if (typeof type === 'string') {
    attrs.datacontenttype = type;
    // A bare JSON string (data without its quotes) reads as the SDK reads it.
    if (body !== '' && JSON_TYPES.has(type)) data = JSON.parse(/^[[{"]/.test(body) ? body : `"${body}"`);
  }
  return new CloudEvent<unknown>({ ...attrs, data } as ConstructorParameters<typeof CloudEvent<unknown>>[0]);
}

/** handle is the function: it turns the event it receives into the event it replies with. Put your logic here. */
export function handle(
  event: CloudEvent<unknown>,
  { greeting, replyType, source }: { greeting: string; replyType: string; source: string },
): CloudEvent<Reply> {
  let data = event.data;
  if (typeof data === 'string' && data !== '') {
    try {
      data = JSON.parse(data);
    } catch {
      throw new HttpError(422, 'the event data must be JSON such as {"name":"Ada"}');
    }
  }
  const name = (data as { name?: unknown } | undefined)?.name;
  const who = typeof name === 'string' && name.trim() ? name.trim() : 'World';
  return new CloudEvent<Reply>({
    source,
    type: replyType,
    subject: event.id,
    datacontenttype: 'application/json',
    data: { message: `${greeting}, ${who}!` },
  });
}

/**
 * createHandler receives a CloudEvent over HTTP in binary or structured mode and answers with the reply event in the same mode.
 * greeting() returns the current greeting: it is called for every event, so a live config change needs no restart.
 */
export function createHandler(
  { greeting, replyType, source, logger }: { greeting: () => string; replyType: string; source: string; logger: Logger },
): App {
  return async (req, res) => {
    if (req.method !== 'POST') {
      return sendJSON(res, 405, { error: 'send a CloudEvent with POST' }, { Allow: 'POST' });
    }
    const body = await readBody(req);
    const contentType = String(req.headers['content-type'] ?? '');
    const structured = contentType.startsWith(STRUCTURED);
    let event: CloudEvent<unknown>;
    try {
      // Binary mode 1.0 (what skiff-relay sends) is read here; structured and batched events, and older versions, by the SDK.
      if (!contentType.startsWith('application/cloudevents') && req.headers['ce-specversion'] === '1.0') {
        event = fromBinary(req.headers, body);
      } else {
        const received = HTTP.toEvent<unknown>({ headers: req.headers, body });
        if (Array.isArray(received)) throw new Error('batches are not supported; send one event');
        event = new CloudEvent<unknown>(received); // validates the event
      }
    } catch (err) {
      const e = err as { errors?: unknown; message?: string };
      const detail = e.errors ? JSON.stringify(e.errors) : String(e.message ?? err);
      return sendJSON(res, 400, { error: `the request is not a valid CloudEvent: ${detail}` });
    }
    logger.debug('received event', { id: event.id, type: event.type, source: event.source, mode: structured ? 'structured' : 'binary' });
    let reply: CloudEvent<Reply>;
    try {
      reply = handle(event, { greeting: greeting(), replyType, source });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      logger.warn('rejected event', { id: event.id, error: err.message });
      return sendJSON(res, err.status, { error: err.message });
    }
    const message = structured ? HTTP.structured(reply) : HTTP.binary(reply);
    res.writeHead(200, message.headers as Record<string, string>);
    res.end(message.body as string);
  };
}

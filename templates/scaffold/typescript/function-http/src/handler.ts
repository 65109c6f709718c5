import type { App, Logger } from './server';
import { HttpError, readBody, sendJSON } from './server';

/** checkConfig rejects a live config update that would leave a blank greeting (a GREETING removed from the config falls back to the default). */
export function checkConfig(values: Record<string, string>): void {
  if ('GREETING' in values && !values.GREETING.trim()) throw new Error('GREETING must not be blank');
}

/**
 * createHandler returns the function: GET /?name=Ada or POST {"name":"Ada"} answers {"message":"<greeting>, Ada!"}.
 * greeting() returns the current greeting: it is called for every request, so a live config change needs no restart.
 */
export function createHandler({ greeting, logger }: { greeting: () => string; logger: Logger }): App {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let name: unknown;
    if (req.method === 'GET' || req.method === 'HEAD') {
      name = url.searchParams.get('name');
    } else if (req.method === 'POST') {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        if (err instanceof HttpError) throw err;
        return sendJSON(res, 400, { error: 'the body must be JSON such as {"name":"Ada"}' });
      }
      name = (body as { name?: unknown } | null)?.name;
    } else {
      return sendJSON(res, 405, { error: 'method not allowed' }, { Allow: 'GET, HEAD, POST' });
    }
    const who = typeof name === 'string' && name.trim() ? name.trim() : 'World';
    logger.debug('greeting', { name: who });
    return sendJSON(res, 200, { message: `${greeting()}, ${who}!` });
  };
}

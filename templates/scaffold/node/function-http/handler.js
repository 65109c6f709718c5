'use strict';
const { sendJSON, readBody } = require('./server');

// checkConfig rejects a live config update that would leave a blank greeting
// (a GREETING removed from the config falls back to the default).
function checkConfig(values) {
  if ('GREETING' in values && !values.GREETING.trim()) throw new Error('GREETING must not be blank');
}

// createHandler returns the function: GET /?name=Ada or POST {"name":"Ada"}
// answers {"message":"<greeting>, Ada!"}. greeting() returns the current
// greeting: it is called for every request, so a live config change needs
// no restart.
function createHandler({ greeting, logger }) {
  return async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    let name;
    if (req.method === 'GET' || req.method === 'HEAD') {
      name = url.searchParams.get('name');
    } else if (req.method === 'POST') {
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        if (err.status) throw err;
        return sendJSON(res, 400, { error: 'the body must be JSON such as {"name":"Ada"}' });
      }
      name = body && body.name;
    } else {
      return sendJSON(res, 405, { error: 'method not allowed' }, { Allow: 'GET, HEAD, POST' });
    }
    name = typeof name === 'string' && name.trim() ? name.trim() : 'World';
    logger.debug('greeting', { name });
    return sendJSON(res, 200, { message: `${greeting()}, ${name}!` });
  };
}

module.exports = { checkConfig, createHandler };

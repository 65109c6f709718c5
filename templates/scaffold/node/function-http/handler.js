'use strict';
const { sendJSON, readBody } = require('./server');

// createHandler returns the function: GET /?name=Ada or POST {"name":"Ada"}
// answers {"message":"<greeting>, Ada!"}.
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
    return sendJSON(res, 200, { message: `${greeting}, ${name}!` });
  };
}

module.exports = { createHandler };

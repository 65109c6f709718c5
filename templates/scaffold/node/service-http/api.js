'use strict';
const { sendJSON, readBody } = require('./server');

// createStore keeps items in memory; replace it with a database client.
function createStore() {
  const items = new Map();
  let next = 0;
  return {
    add(name) {
      next += 1;
      const item = { id: String(next), name, createdAt: new Date().toISOString() };
      items.set(item.id, item);
      return item;
    },
    get: (id) => items.get(id),
    remove: (id) => items.delete(id),
    list: () => [...items.values()],
  };
}

// createAPI returns the service's routes:
//   GET    /            what this service is
//   GET    /items       all items
//   POST   /items       add one: {"name":"..."}
//   GET    /items/:id   one item
//   DELETE /items/:id   remove one
function createAPI({ name, logger }) {
  const store = createStore();
  return async (req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost');
    const one = /^\/items\/([^/]+)$/.exec(pathname);
    if (pathname === '/' && req.method === 'GET') {
      return sendJSON(res, 200, { service: name, items: store.list().length });
    }
    if (pathname === '/items' && req.method === 'GET') {
      return sendJSON(res, 200, store.list());
    }
    if (pathname === '/items' && req.method === 'POST') {
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        if (err.status) throw err;
        return sendJSON(res, 400, { error: 'the body must be JSON such as {"name":"apple"}' });
      }
      const itemName = body && typeof body.name === 'string' ? body.name.trim() : '';
      if (!itemName) return sendJSON(res, 400, { error: 'name is required' });
      const item = store.add(itemName);
      logger.info('item added', { id: item.id });
      return sendJSON(res, 201, item, { Location: `/items/${item.id}` });
    }
    if (one && req.method === 'GET') {
      const item = store.get(one[1]);
      return item ? sendJSON(res, 200, item) : sendJSON(res, 404, { error: `no item ${one[1]}` });
    }
    if (one && req.method === 'DELETE') {
      if (!store.remove(one[1])) return sendJSON(res, 404, { error: `no item ${one[1]}` });
      logger.info('item removed', { id: one[1] });
      res.writeHead(204);
      return res.end();
    }
    return sendJSON(res, 404, { error: `no route ${req.method} ${pathname}` });
  };
}

module.exports = { createAPI, createStore };

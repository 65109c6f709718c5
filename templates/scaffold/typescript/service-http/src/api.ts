import type { App, Logger } from './server';
import { HttpError, readBody, sendJSON } from './server';

export interface Item {
  id: string;
  name: string;
  createdAt: string;
}

/** Store keeps items in memory; replace it with a database client. */
export class Store {
  private readonly items = new Map<string, Item>();
  private next = 0;

  add(name: string): Item {
    this.next += 1;
    const item: Item = { id: String(this.next), name, createdAt: new Date().toISOString() };
    this.items.set(item.id, item);
    return item;
  }

  get(id: string): Item | undefined {
    return this.items.get(id);
  }

  remove(id: string): boolean {
    return this.items.delete(id);
  }

  list(): Item[] {
    return [...this.items.values()];
  }
}

/**
 * createAPI returns the service's routes:
 *   GET    /            what this service is
 *   GET    /items       all items
 *   POST   /items       add one: {"name":"..."}
 *   GET    /items/:id   one item
 *   DELETE /items/:id   remove one
 */
export function createAPI({ name, logger }: { name: string; logger: Logger }): App {
  const store = new Store();
  return async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    const one = /^\/items\/([^/]+)$/.exec(pathname);
    if (pathname === '/' && req.method === 'GET') {
      return sendJSON(res, 200, { service: name, items: store.list().length });
    }
    if (pathname === '/items' && req.method === 'GET') {
      return sendJSON(res, 200, store.list());
    }
    if (pathname === '/items' && req.method === 'POST') {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch (err) {
        if (err instanceof HttpError) throw err;
        return sendJSON(res, 400, { error: 'the body must be JSON such as {"name":"apple"}' });
      }
      const raw = (body as { name?: unknown } | null)?.name;
      const itemName = typeof raw === 'string' ? raw.trim() : '';
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
      res.end();
      return;
    }
    return sendJSON(res, 404, { error: `no route ${req.method} ${pathname}` });
  };
}

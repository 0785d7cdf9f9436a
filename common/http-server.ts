import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './log.js';

/**
 * The daemons' HTTP surfaces (the agent's `[prometheus]`, the coordinator's `[http]`): GET-only
 * routes on a loopback address (both config schemas refuse any other host), such as /metrics and
 * the coordinator's status page. A route answers or throws; a throw is logged and answered 500
 * without the error's text. The caller logs where it listens.
 */
export type Route = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export class HttpServer {
  private constructor(
    private readonly server: Server,
    /** http://host:port, without a trailing slash. */
    readonly base: string,
  ) {}

  static async start(routes: ReadonlyMap<string, Route>, host: string, port: number, logger: Logger): Promise<HttpServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const route = routes.get(path);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('only GET is served here\n');
        return;
      }
      if (!route) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found; served here: ${[...routes.keys()].join(' ')}\n`);
        return;
      }
      Promise.resolve()
        .then(() => route(req, res))
        .catch((err: unknown) => {
          logger.error({ err, path }, 'http route failed');
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
          res.end('internal error\n');
        });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    const base = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    return new HttpServer(server, base);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** GET /metrics: a registry's Prometheus text exposition. */
export function metricsRoute(registry: Registry): Route {
  return async (_req, res) => {
    const text = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType }).end(text);
  };
}

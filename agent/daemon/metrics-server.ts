import type { Registry } from 'prom-client';
import { HttpServer, metricsRoute } from '../../common/http-server.js';
import type { Logger } from '../../common/log.js';

/**
 * The Prometheus text endpoint: GET /metrics (and /) on a loopback address (the config schema
 * refuses any other host). Port 0 picks a free port; `url` says which.
 */
export class MetricsServer {
  private constructor(
    private readonly server: HttpServer,
    readonly url: string,
  ) {}

  static async start(registry: Registry, host: string, port: number, logger: Logger): Promise<MetricsServer> {
    const route = metricsRoute(registry);
    const server = await HttpServer.start(new Map([['/metrics', route], ['/', route]]), host, port, logger);
    const url = `${server.base}/metrics`;
    logger.info({ url }, 'metrics endpoint listening');
    return new MetricsServer(server, url);
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

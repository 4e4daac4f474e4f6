// Prometheus metrics (prom-client). Each process's composition root makes one Registry and hands
// it, or the metric objects made on it, to the modules that count: no global registry, so
// several processes' worth of metrics can live in one test process without mixing.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';

export type { Registry };

/** A registry with Node's process metrics and a `component` label (logic, job, comet). */
export function createRegistry(component: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Writes the Prometheus text to a plain node:http response (job's server, comet's WebSocket port). */
export function answerMetrics(registry: Registry, res: ServerResponse): void {
  registry.metrics().then(
    (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
    (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
  );
}

/**
 * GET /metrics on its own port, for processes without an HTTP server of their own (job).
 * Port 0 picks a free one; the bound port is returned.
 */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    answerMetrics(registry, res);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, () => resolve()));
  return { server, port: (server.address() as AddressInfo).port };
}

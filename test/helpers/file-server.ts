// A local HTTP server on loopback (free port) that serves what a test puts on it: files with or
// without Content-Length, error statuses, redirects, bodies cut short, and servers that stall.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Route = (req: IncomingMessage, res: ServerResponse) => void;

export interface FileServer {
  url: string;
  /** Paths requested, in order. */
  hits: string[];
  route(path: string, handler: Route): void;
  /** A file with Content-Length. */
  file(path: string, body: Buffer, contentType?: string): void;
  close(): Promise<void>;
}

export const routes = {
  /** The body in 64 KiB chunks without Content-Length (chunked encoding). */
  chunked: (body: Buffer): Route => (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    for (let at = 0; at < body.length; at += 65_536) res.write(body.subarray(at, at + 65_536));
    res.end();
  },
  status: (status: number): Route => (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain' }).end(`status ${status}`);
  },
  redirect: (location: string, status = 302): Route => (_req, res) => {
    res.writeHead(status, { location }).end();
  },
  /** Headers and the first bytes, then nothing: a download that never finishes. */
  stall: (first: Buffer): Route => (_req, res) => {
    res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': String(first.length * 100) });
    res.write(first);
  },
  /** The whole body, then the server closes the connection (HTTP/1.0 style, like python -m http.server). */
  closing: (body: Buffer): Route => (_req, res) => {
    res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': String(body.length), connection: 'close' });
    // In 64 KiB writes, one per turn of the event loop, as python's copyfileobj does.
    let at = 0;
    const next = () => {
      if (at >= body.length) return void res.end();
      res.write(body.subarray(at, (at += 65_536)), () => setImmediate(next));
    };
    next();
  },
  /** Announces the whole body, sends half, then drops the connection. */
  cutShort: (body: Buffer): Route => (_req, res) => {
    res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': String(body.length) });
    res.write(body.subarray(0, body.length >> 1), () => res.destroy());
  },
};

export async function startFileServer(): Promise<FileServer> {
  const table = new Map<string, Route>();
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    hits.push(path);
    const handler = table.get(path);
    if (handler) handler(req, res);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    route: (path, handler) => table.set(path, handler),
    file: (path, body, contentType = 'application/octet-stream') =>
      table.set(path, (_req, res) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': String(body.length) }).end(body);
      }),
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// The comet's WebSocket side. The token is checked before the upgrade completes (401
// otherwise); identity and room come from the token only. Each connection is registered in
// the routing keys on open and removed on close; heartbeats keep the user online. Malformed
// frames get an error frame, and a client that keeps sending them is closed with 4002 —
// everyone else on the comet is unaffected.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { verifyConnectionToken } from '../auth/token.ts';
import type { RoutingRegistry } from '../routing/registry.ts';
import type { Logger } from '../util/log.ts';
import { CLOSE, errorFrame } from './frames.ts';
import type { Conn, Hub } from './hub.ts';

export interface WsServerOptions {
  cometId: string;
  authSecret: string;
  hub: Hub;
  registry: RoutingRegistry;
  maxFrameBytes: number;
  log: Logger;
  /** How many malformed frames a connection may send before it is closed. */
  maxBadFrames?: number;
  pingIntervalMs?: number;
}

export interface WsServer {
  server: Server;
  wss: WebSocketServer;
  /** Close every socket with 1001 and remove their routing. */
  closeAll(): Promise<void>;
}

function refuse(socket: Duplex, status: 400 | 401, message: string): void {
  const body = JSON.stringify({ error: status === 401 ? 'unauthorized' : 'bad_request', message });
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Bad Request'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export function createWsServer(options: WsServerOptions): WsServer {
  const { hub, registry, log } = options;
  const maxBadFrames = options.maxBadFrames ?? 5;
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes });
  const server = createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', comet_id: options.cometId, connections: hub.conns.size }));
      return;
    }
    res.writeHead(426, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'upgrade_required', message: 'connect with a WebSocket: ws://host:port/?token=...' }));
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const token = new URL(req.url ?? '/', 'ws://comet').searchParams.get('token');
    if (!token) return refuse(socket, 401, 'token query parameter is required (get one from POST /logic/token)');
    verifyConnectionToken(token, options.authSecret).then((check) => {
      if (!check.ok) return refuse(socket, 401, check.reason);
      wss.handleUpgrade(req, socket, head, (ws) => void accept(ws, check.claims));
    }, () => refuse(socket, 401, 'token could not be checked'));
  });

  async function accept(ws: WebSocket, claims: { userId: string; roomId: string; userName?: string }): Promise<void> {
    const conn: Conn = { id: `c${randomBytes(9).toString('base64url')}`, userId: claims.userId, roomId: claims.roomId, ws };
    hub.add(conn);
    let alive = true;
    let badFrames = 0;
    ws.on('pong', () => (alive = true));
    ws.on('close', () => {
      hub.remove(conn);
      registry.disconnect([conn.id]).catch((err) => log.warn({ err: String(err), conn: conn.id }, 'could not remove routing'));
    });
    ws.on('error', (err) => log.debug({ err: String(err), conn: conn.id }, 'socket error'));
    ws.on('message', (data, isBinary) => {
      const reject = (frame: string) => {
        ws.send(frame);
        if (++badFrames >= maxBadFrames) ws.close(CLOSE.protocolError, `too many malformed frames (${badFrames})`);
      };
      if (isBinary) return reject(errorFrame('binary_not_supported', 'frames are JSON text'));
      let frame: unknown;
      try {
        frame = JSON.parse(data.toString());
      } catch {
        return reject(errorFrame('invalid_json', 'frame is not valid JSON'));
      }
      const type = frame && typeof frame === 'object' ? (frame as { type?: unknown }).type : undefined;
      if (typeof type !== 'string') return reject(errorFrame('invalid_frame', 'frame must be a JSON object with a string "type"'));
      if (type === 'heartbeat') {
        alive = true;
        registry.touch({ connId: conn.id, userId: conn.userId }).catch((err) => log.warn({ err: String(err) }, 'heartbeat not recorded'));
        ws.send('{"type":"heartbeat"}');
        return;
      }
      reject(errorFrame('unknown_type', `unknown frame type "${type}" (known: heartbeat)`));
    });
    const ping = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, options.pingIntervalMs ?? 30_000);
    ping.unref();
    ws.once('close', () => clearInterval(ping));

    try {
      await registry.connect({ connId: conn.id, cometId: options.cometId, userId: conn.userId, roomId: conn.roomId });
    } catch (err) {
      log.error({ err: String(err) }, 'could not register the connection in Redis; closing it');
      ws.close(1011, 'routing unavailable, reconnect later');
      return;
    }
    ws.send(JSON.stringify({ type: 'connected', payload: { connId: conn.id, userId: conn.userId, roomId: conn.roomId } }));
  }

  return {
    server,
    wss,
    async closeAll() {
      hub.flushAll();
      const conns = [...hub.conns.values()];
      for (const c of conns) c.ws.close(CLOSE.goingAway, 'comet shutting down');
      await registry.disconnect(conns.map((c) => c.id)).catch(() => {});
    },
  };
}

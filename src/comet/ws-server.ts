// The comet's WebSocket side. The token is checked before the upgrade completes (401
// otherwise); identity and room come from the token only. Each connection is registered in
// the routing keys on open and removed on close; heartbeats keep the user online. Malformed
// frames get an error frame, and a client that keeps sending them is closed with 4002 —
// everyone else on the comet is unaffected.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { answerMetrics, type Registry } from '../metrics/registry.ts';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { verifyConnectionToken } from '../auth/token.ts';
import type { RoutingRegistry } from '../routing/registry.ts';
import type { Logger } from '../util/log.ts';
import { CLOSE, errorFrame, HISTORY_FRAME_OVERHEAD, historyFrame, splitAtBytes, STORED_MESSAGE_OVERHEAD, storedMessageFrame, batchFrame } from './frames.ts';
import type { Conn, Hub } from './hub.ts';
import { TokenBucket } from './rate-limit.ts';

/** What the comet does for clients beyond delivery; built in main.ts over Redis and the queue. */
export interface CometServices {
  /** Room messages with seq > sinceSeq still in room:history, oldest first (payload JSON texts). */
  history(roomId: string, sinceSeq: number): Promise<string[]>;
  /** Up to `count` of the messages waiting in user:offline for this user, oldest first; left in place. */
  peekOffline(userId: string, count: number): Promise<string[]>;
  /**
   * Removes `sent` (oldest first, as peeked) from user:offline once they were written out, as
   * far as they are still its oldest entries; returns how many were removed (0: another
   * connection of the user already took them).
   */
  ackOffline(userId: string, sent: readonly string[]): Promise<number>;
  /** Enqueues a client's message as a room message under the connection's identity. */
  upstream(conn: { userId: string; roomId: string; userName?: string }, content: string, priority?: number): Promise<{ id: string }>;
  /**
   * The comet's connection count changed. Logic hands out the least-loaded comet, so the count
   * it reads must include a connection before that connection hears `connected`.
   */
  connectionsChanged?(): Promise<void>;
}

const MAX_CONTENT = 4000;
/** Heartbeats refused in a row (rate_limited) before the connection is closed with 4029. */
const HEARTBEAT_FLOOD_CLOSE_AFTER = 20;
/** Offline messages read from Redis per round trip (then split at the frame byte bound). */
const OFFLINE_READ = 100;

export interface WsServerOptions {
  cometId: string;
  /** Served at GET /metrics on the WebSocket port. */
  metrics?: Registry;
  authSecret: string;
  hub: Hub;
  registry: RoutingRegistry;
  maxFrameBytes: number;
  /** History and offline messages are sent in frames of at most this many bytes. */
  maxSendFrameBytes: number;
  log: Logger;
  /** How many malformed frames a connection may send before it is closed. */
  maxBadFrames?: number;
  pingIntervalMs?: number;
  services: CometServices;
  upstreamRate: { perSec: number; burst: number };
  /** user:online is refreshed at most once per refreshMs; faster heartbeats are rate limited. */
  heartbeats?: { refreshMs: number; perSec: number; burst: number };
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

/** The token query parameter: '' when absent, undefined when the target is no URL at all. */
function tokenOf(target: string | undefined): string | undefined {
  try {
    return new URL(target ?? '/', 'ws://comet').searchParams.get('token') ?? '';
  } catch {
    return undefined;
  }
}

const CONN = Symbol('pushline.conn');

interface SocketState {
  conn: Conn;
  badFrames: number;
  bucket: TokenBucket | null;
  /** When (ms) this connection last refreshed user:online. */
  touchedAt: number;
  /** Made only for a client that heartbeats faster than the refresh interval. */
  heartbeats: TokenBucket | null;
  /** Heartbeats refused in a row. */
  heartbeatsRefused: number;
  userName?: string;
}

const payloadOf = (frame: unknown) => ((frame as { payload?: unknown }).payload ?? {}) as Record<string, unknown>;

export function createWsServer(options: WsServerOptions): WsServer {
  const { hub, registry, log } = options;
  const maxBadFrames = options.maxBadFrames ?? 5;
  const heartbeats = options.heartbeats ?? { refreshMs: 5000, perSec: 2, burst: 10 };
  // The hub tracks sockets already; ws's own client Set would be a second copy.
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes, clientTracking: false });
  // One sweep pings every socket and drops those that did not answer the previous ping: a
  // timer per connection would cost memory on every idle socket.
  const unanswered = new WeakSet<WebSocket>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const conn of hub.conns.values()) {
      // A socket whose buffer stayed full with nothing more sent to it is found here.
      if (hub.closeIfSlow(conn, now)) continue;
      if (unanswered.has(conn.ws)) {
        conn.ws.terminate();
        continue;
      }
      unanswered.add(conn.ws);
      conn.ws.ping();
    }
  }, options.pingIntervalMs ?? 30_000);
  sweep.unref();
  const server = createServer((req, res) => {
    if (req.url === '/metrics' && options.metrics) return answerMetrics(options.metrics, res);
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', comet_id: options.cometId, connections: hub.conns.size }));
      return;
    }
    res.writeHead(426, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'upgrade_required', message: 'connect with a WebSocket: ws://host:port/?token=...' }));
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    // Anyone can reach this before any token is checked: nothing here may throw past it.
    const token = tokenOf(req.url);
    if (token === undefined) return refuse(socket, 400, 'the request target is not a valid URL');
    if (!token) return refuse(socket, 401, 'token query parameter is required (get one from POST /logic/token)');
    verifyConnectionToken(token, options.authSecret)
      .then((check) => {
        if (!check.ok) return refuse(socket, 401, check.reason);
        wss.handleUpgrade(req, socket, head, (ws) => {
          accept(ws, check.claims).catch((err) => {
            log.error({ err: String(err) }, 'could not set up a connection; closing it');
            ws.close(CLOSE.internalError, 'internal error, reconnect later');
          });
        });
      }, () => refuse(socket, 401, 'token could not be checked'))
      .catch((err) => {
        log.error({ err: String(err) }, 'upgrade failed');
        socket.destroy();
      });
  });

  // One set of handlers for every socket (`this` is the socket), per-connection state on the
  // Conn: a closure set per socket would cost memory on every idle connection.
  const connOf = (ws: WebSocket) => (ws as WebSocket & { [CONN]?: SocketState })[CONN]!;
  function onPong(this: WebSocket) {
    unanswered.delete(this);
  }
  function onClose(this: WebSocket) {
    const { conn } = connOf(this);
    hub.remove(conn);
    registry.disconnect([conn.id]).catch((err) => log.warn({ err: String(err), conn: conn.id }, 'could not remove routing'));
    options.services.connectionsChanged?.().catch(() => {});
  }
  function onError(this: WebSocket, err: Error) {
    log.debug({ err: String(err), conn: connOf(this).conn.id }, 'socket error');
  }
  function onMessage(this: WebSocket, data: RawData, isBinary: boolean) {
    const ws = this;
    const state = connOf(ws);
    const { conn } = state;
    const reject = (frame: string) => {
      ws.send(frame);
      if (++state.badFrames >= maxBadFrames) ws.close(CLOSE.protocolError, `too many malformed frames (${state.badFrames})`);
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
    if (type === 'heartbeat') return heartbeat(ws, state);
    if (type === 'history') {
      const since = Number(payloadOf(frame).sinceSeq ?? 0);
      if (!Number.isInteger(since) || since < 0) return reject(errorFrame('invalid_frame', 'history payload.sinceSeq must be a whole number ≥ 0'));
      sendHistory(conn, since).catch((err) => {
        log.warn({ err: String(err), conn: conn.id }, 'history not answered');
        ws.send(errorFrame('unavailable', 'history is unavailable right now; ask again'));
      });
      return;
    }
    if (type === 'clientMessages') {
      const content = payloadOf(frame).content;
      if (typeof content !== 'string' || content.length === 0 || content.length > MAX_CONTENT) {
        return reject(errorFrame('invalid_frame', `clientMessages payload.content must be a string of 1 to ${MAX_CONTENT} characters`));
      }
      const priority = payloadOf(frame).priority;
      if (priority !== undefined && !(Number.isInteger(priority) && (priority as number) >= 1 && (priority as number) <= 5)) {
        return reject(errorFrame('invalid_frame', 'clientMessages payload.priority must be a whole number from 1 to 5'));
      }
      // Made on the first upstream message: most connections only listen.
      state.bucket ??= new TokenBucket(options.upstreamRate.perSec, options.upstreamRate.burst);
      if (!state.bucket.take()) return void ws.send(errorFrame('rate_limited', `at most ${options.upstreamRate.perSec} messages per second`));
      // Identity and room come from the token, never from the frame.
      options.services.upstream({ userId: conn.userId, roomId: conn.roomId, ...(state.userName ? { userName: state.userName } : {}) }, content, priority as number | undefined).then(
        ({ id }) => ws.send(JSON.stringify({ type: 'ack', payload: { id } })),
        () => ws.send(errorFrame('unavailable', 'message not accepted (queue unavailable); send it again')),
      );
      return;
    }
    reject(errorFrame('unknown_type', `unknown frame type "${type}" (known: heartbeat, history, clientMessages)`));
  }

  /** Answers a heartbeat; Redis hears of it at most once per refresh interval; a flood is refused, then closed. */
  function heartbeat(ws: WebSocket, state: SocketState): void {
    const { conn } = state;
    unanswered.delete(ws);
    const now = Date.now();
    if (now - state.touchedAt >= heartbeats.refreshMs) {
      state.touchedAt = now;
      registry.touch({ connId: conn.id, userId: conn.userId }).catch((err) => log.warn({ err: String(err) }, 'heartbeat not recorded'));
    } else {
      // Sooner than the refresh interval: no Redis write; the rate is checked (the bucket is
      // made only here, so clients that heartbeat sanely never carry one).
      state.heartbeats ??= new TokenBucket(heartbeats.perSec, heartbeats.burst, now);
      if (!state.heartbeats.take(now)) {
        ws.send(errorFrame('rate_limited', `at most ${heartbeats.perSec} heartbeats per second`));
        if (++state.heartbeatsRefused >= HEARTBEAT_FLOOD_CLOSE_AFTER) ws.close(CLOSE.rateLimited, `too many heartbeats (${state.heartbeatsRefused} refused in a row)`);
        return;
      }
    }
    state.heartbeatsRefused = 0;
    ws.send('{"type":"heartbeat"}');
  }

  async function accept(ws: WebSocket, claims: { userId: string; roomId: string; userName?: string }): Promise<void> {
    const conn: Conn = { id: `c${randomBytes(9).toString('base64url')}`, userId: claims.userId, roomId: claims.roomId, ws, overSince: 0 };
    (ws as WebSocket & { [CONN]?: SocketState })[CONN] = { conn, badFrames: 0, bucket: null, touchedAt: 0, heartbeats: null, heartbeatsRefused: 0, ...(claims.userName ? { userName: claims.userName } : {}) };
    hub.add(conn);
    ws.on('pong', onPong);
    ws.on('close', onClose);
    ws.on('error', onError);
    ws.on('message', onMessage);
    try {
      await registry.connect({ connId: conn.id, cometId: options.cometId, userId: conn.userId, roomId: conn.roomId });
    } catch (err) {
      log.error({ err: String(err) }, 'could not register the connection in Redis; closing it');
      ws.close(CLOSE.internalError, 'routing unavailable, reconnect later');
      return;
    }
    // Not fatal: the next heartbeat writes the count anyway.
    await options.services.connectionsChanged?.().catch((err) => log.debug({ err: String(err) }, 'connection count not updated'));
    ws.send(JSON.stringify({ type: 'connected', payload: { connId: conn.id, userId: conn.userId, roomId: conn.roomId } }));
    // What was pushed to this user while no connection of theirs was open.
    await deliverOffline(conn).catch((err) => log.warn({ err: String(err), conn: conn.id }, 'offline messages not delivered (they stay for the next connection)'));
  }

  /** The room's history after `since`, in frames within the byte bound, the last marked complete. */
  async function sendHistory(conn: Conn, since: number): Promise<void> {
    const messages = await options.services.history(conn.roomId, since);
    const fixed = HISTORY_FRAME_OVERHEAD + Buffer.byteLength(JSON.stringify(conn.roomId));
    const parts = messages.length === 0 ? [[]] : splitAtBytes(messages, options.maxSendFrameBytes, 0, fixed);
    for (const [i, part] of parts.entries()) {
      // One frame at a time, each once the previous one left: a long history never piles up.
      if (!(await hub.sendFlushed(conn, historyFrame(conn.roomId, since, part, i === parts.length - 1)))) return;
    }
  }

  /**
   * user:offline in bounded reads and frames. Each frame's messages leave Redis only after the
   * frame was written to the socket; a connection that closes midway leaves the rest for the
   * next one. Two connections of the same user opening at once may both get the same messages
   * (clients drop duplicates by id), never none.
   */
  async function deliverOffline(conn: Conn): Promise<void> {
    for (;;) {
      const waiting = await options.services.peekOffline(conn.userId, OFFLINE_READ);
      if (waiting.length === 0) return;
      for (const part of splitAtBytes(waiting, options.maxSendFrameBytes, STORED_MESSAGE_OVERHEAD)) {
        if (!(await hub.sendFlushed(conn, batchFrame(part.map(storedMessageFrame))))) return;
        // Nothing removed: another connection of this user is delivering them.
        if ((await options.services.ackOffline(conn.userId, part)) === 0) return;
      }
      if (waiting.length < OFFLINE_READ) return;
    }
  }

  return {
    server,
    wss,
    async closeAll() {
      clearInterval(sweep);
      hub.flushAll();
      const conns = [...hub.conns.values()];
      for (const c of conns) c.ws.close(CLOSE.goingAway, 'comet shutting down');
      await registry.disconnect(conns.map((c) => c.id)).catch(() => {});
    },
  };
}

// pushline's client, for browsers and Node (no Node-only imports). It connects to a comet with
// a token, keeps the connection alive with heartbeats, reconnects with backoff and jitter
// (asking for a fresh token each time), recovers missed room messages by seq after a
// reconnect or a gap, and drops duplicates by message id.

/** The subset of the WebSocket API used here: the browser's global, or the `ws` package in Node. */
export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}
export type SocketFactory = new (url: string) => SocketLike;

export interface Connection {
  /** ws://host:port of a comet (from POST /logic/token's `comet`). */
  url: string;
  token: string;
}

export interface ServerMessage {
  id?: string;
  seq?: number;
  [key: string]: unknown;
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ClientOptions {
  /** Called before every (re)connect: tokens expire, so ask logic for a fresh one each time. */
  connection: () => Promise<Connection>;
  onMessage: (message: ServerMessage) => void;
  onState?: (state: ClientState, detail?: string) => void;
  onError?: (code: string, message: string) => void;
  WebSocket?: SocketFactory;
  heartbeatMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How many recent message ids are remembered for dropping duplicates. */
  dedupeWindow?: number;
}

const OPEN = 1;

export class PushlineClient {
  private socket: SocketLike | null = null;
  private closedByUser = false;
  private attempt = 0;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly seen = new Set<string>();
  private readonly pendingAcks: ((id: string) => void)[] = [];
  /** Highest room seq seen: the point to recover from. */
  lastSeq = 0;
  connId: string | null = null;

  constructor(private readonly options: ClientOptions) {}

  private get Socket(): SocketFactory {
    const ctor = this.options.WebSocket ?? (globalThis as unknown as { WebSocket?: SocketFactory }).WebSocket;
    if (!ctor) throw new Error('no WebSocket implementation: pass options.WebSocket (e.g. the ws package in Node 20)');
    return ctor;
  }

  connect(): void {
    this.closedByUser = false;
    void this.open();
  }

  close(): void {
    this.closedByUser = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    this.socket?.close(1000, 'client closed');
    this.setState('closed');
  }

  /** Send a room message (the comet attaches this connection's identity), optionally with a priority 1..5; resolves with its id. */
  send(content: string, priority?: number): Promise<string> {
    if (!this.socket || this.socket.readyState !== OPEN) return Promise.reject(new Error('not connected'));
    this.socket.send(JSON.stringify({ type: 'clientMessages', payload: priority === undefined ? { content } : { content, priority } }));
    return new Promise((resolve) => this.pendingAcks.push(resolve));
  }

  private setState(state: ClientState, detail?: string): void {
    this.options.onState?.(state, detail);
  }

  private async open(): Promise<void> {
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let connection: Connection;
    try {
      connection = await this.options.connection();
    } catch (err) {
      return this.scheduleReconnect(`no token: ${(err as Error).message}`);
    }
    if (this.closedByUser) return;
    const sep = connection.url.includes('?') ? '&' : '?';
    const socket = new this.Socket(`${connection.url.replace(/\/$/, '')}/${sep}token=${encodeURIComponent(connection.token)}`);
    this.socket = socket;
    socket.onmessage = (ev) => this.receive(String(ev.data));
    socket.onerror = () => {};
    socket.onclose = (ev) => {
      this.stopHeartbeat();
      if (this.socket === socket) this.socket = null;
      if (!this.closedByUser) this.scheduleReconnect(`closed ${ev.code}${ev.reason ? ` ${ev.reason}` : ''}`);
    };
  }

  private scheduleReconnect(why: string): void {
    const min = this.options.reconnectMinMs ?? 500;
    const max = this.options.reconnectMaxMs ?? 15_000;
    const ceiling = Math.min(max, min * 2 ** Math.min(this.attempt, 10));
    const wait = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt++;
    this.setState('reconnecting', why);
    this.retryTimer = setTimeout(() => void this.open(), wait);
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      if (this.socket?.readyState === OPEN) this.socket.send('{"type":"heartbeat"}');
    }, this.options.heartbeatMs ?? 25_000);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private requestHistory(): void {
    if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify({ type: 'history', payload: { sinceSeq: this.lastSeq } }));
  }

  private receive(text: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return;
    }
    for (const frame of Array.isArray(parsed) ? parsed : [parsed]) {
      const { type, payload } = (frame ?? {}) as { type?: string; payload?: unknown };
      if (type === 'serverMessages') this.deliver(payload as ServerMessage, true);
      else if (type === 'history') {
        for (const m of ((payload as { messages?: ServerMessage[] }).messages ?? [])) this.deliver(m, false);
      } else if (type === 'connected') {
        this.connId = (payload as { connId?: string }).connId ?? null;
        const reconnected = this.attempt > 0;
        this.attempt = 0;
        this.startHeartbeat();
        this.setState('open');
        // Whatever the room said while we were away is still in its history.
        if (reconnected && this.lastSeq > 0) this.requestHistory();
      } else if (type === 'ack') {
        this.pendingAcks.shift()?.((payload as { id: string }).id);
      } else if (type === 'error') {
        const { code, message } = (payload ?? {}) as { code?: string; message?: string };
        this.options.onError?.(code ?? 'error', message ?? '');
      }
    }
  }

  private deliver(message: ServerMessage, live: boolean): void {
    if (!message || typeof message !== 'object') return;
    if (message.id !== undefined) {
      if (this.seen.has(message.id)) return;
      this.seen.add(message.id);
      if (this.seen.size > (this.options.dedupeWindow ?? 1000)) this.seen.delete(this.seen.values().next().value!);
    }
    if (typeof message.seq === 'number' && message.seq > 0) {
      // A live message that skips seqs means some were missed: fetch them from history.
      if (live && this.lastSeq > 0 && message.seq > this.lastSeq + 1) this.requestHistory();
      this.lastSeq = Math.max(this.lastSeq, message.seq);
    }
    this.options.onMessage(message);
  }
}

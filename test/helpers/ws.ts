// A WebSocket test client: signs a token, connects to a comet, records every frame, and
// resolves once the comet's `connected` frame names the connection id.
import WebSocket from 'ws';
import { signConnectionToken } from '../../src/auth/token.ts';
import { waitFor } from './wait.ts';

export interface WsClient {
  ws: WebSocket;
  frames: unknown[];
  connId: string;
  /** Resolves with the close code. */
  closed: Promise<number>;
}

export async function connectClient(port: number, secret: string, userId: string, roomId: string, query = ''): Promise<WsClient> {
  const { token } = await signConnectionToken({ userId, roomId }, secret, 60);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/?token=${token}${query}`);
  const frames: unknown[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  // A refused or dropped connection fails at once, naming its close code, instead of timing out.
  const hello = (await Promise.race([
    waitFor(() => frames.find((f) => (f as { type: string }).type === 'connected'), 'connected frame'),
    closed.then((code) => {
      throw new Error(`connection closed with ${code} before the connected frame`);
    }),
  ])) as { payload: { connId: string } };
  return { ws, frames, connId: hello.payload.connId, closed };
}

/** The payloads of every serverMessages frame received, batches unpacked, in order. */
export function serverMessages(c: { frames: unknown[] }): Record<string, unknown>[] {
  return c.frames
    .flatMap((f) => (Array.isArray(f) ? f : [f]))
    .filter((f) => (f as { type: string }).type === 'serverMessages')
    .map((f) => (f as { payload: Record<string, unknown> }).payload);
}

// One WebSocket text frame, built once and written as is to every socket of a fan-out. Server
// frames are unmasked, so the bytes are the same for every socket; ws.send would rebuild the
// header and issue two writes per socket. Falls back to ws.send where the fast path does not
// apply (compression negotiated, or ws already holding queued frames for that socket).
import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import type { WebSocket } from 'ws';

interface WsInternals {
  _socket?: Socket;
  _sender?: { _queue?: unknown[]; _deflating?: boolean };
  _extensions?: Record<string, unknown>;
}

// ws exports its Sender at runtime; its types do not declare it.
const frameOf = (wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender.frame;

export class TextFrame {
  readonly payload: Buffer;
  private framed: Buffer | null = null;

  /** A string is encoded as UTF-8; a Buffer is taken as the UTF-8 text itself. */
  constructor(text: string | Buffer) {
    this.payload = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  }

  /** Header + payload in one buffer, made on first use. */
  get bytes(): Buffer {
    this.framed ??= Buffer.concat(frameOf(this.payload, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }));
    return this.framed;
  }

  get length(): number {
    return this.payload.length;
  }

  /** `done` (optional) is called once the frame was handed to the kernel, or with the error. */
  writeTo(ws: WebSocket, done?: (err?: Error | null) => void): void {
    const internals = ws as unknown as WsInternals;
    const socket = internals._socket;
    const sender = internals._sender;
    const plain = socket && sender && !sender._deflating && (sender._queue?.length ?? 0) === 0 && !internals._extensions?.['permessage-deflate'];
    if (plain) socket.write(this.bytes, done);
    else ws.send(this.payload, { binary: false }, done);
  }
}

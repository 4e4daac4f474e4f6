// WebSocket frames (DESIGN §5): JSON text. Server → client frames are built as strings once
// per message and reused for every socket; close codes and error frames name the problem.

export const CLOSE = {
  /** Comet shutting down (SIGTERM): reconnect elsewhere. */
  goingAway: 1001,
  /** A frame larger than WS_MAX_FRAME_BYTES (ws closes with it by itself). */
  tooBig: 1009,
  /** The socket could not keep up: its send buffer passed COMET_MAX_BUFFER_BYTES. */
  slowConsumer: 4008,
  /** The client kept sending malformed frames. */
  protocolError: 4002,
} as const;

export type ErrorCode = 'invalid_json' | 'invalid_frame' | 'unknown_type' | 'binary_not_supported' | 'rate_limited' | 'unavailable';

export function errorFrame(code: ErrorCode, message: string): string {
  return JSON.stringify({ type: 'error', payload: { code, message } });
}

export interface ServerMessage {
  frame: string;
  /** The message id, when the body is a JSON object carrying one. */
  id?: string;
}

/**
 * Wraps a message body for clients. A JSON body is embedded as is (no re-encoding); any
 * other body becomes a JSON string, so every frame stays valid JSON.
 */
export function serverMessageFrame(body: Buffer): ServerMessage {
  const text = body.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    const id = parsed && typeof parsed === 'object' && 'id' in parsed ? String((parsed as { id: unknown }).id) : undefined;
    return { frame: `{"type":"serverMessages","payload":${text}}`, ...(id ? { id } : {}) };
  } catch {
    return { frame: `{"type":"serverMessages","payload":${JSON.stringify(text)}}` };
  }
}

/** Several messages for one room within the batch window travel as one JSON array frame. */
export function batchFrame(frames: readonly string[]): string {
  return frames.length === 1 ? frames[0]! : `[${frames.join(',')}]`;
}

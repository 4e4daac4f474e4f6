// The Kafka wire format, shared by QUEUE_BACKEND=kafka and `pushline migrate kafka-to-redis`.
// The record value is goim's PushMsg (proto/push.proto), so the old pipeline's producers and
// consumers read and write the same bytes:
//   - a push task is the PushMsg goim's logic would have sent: ROOM (room), PUSH (keys = user
//     ids) or BROADCAST, operation 4, msg = the message JSON;
//   - any other task is a PushMsg with operation 1000 (OP_TASK) and msg = a JSON envelope
//     {type, priority, payload, hook_url, fields}; goim's own job ignores operations it does not know.
// pushline also puts the whole task hash in the record header `pushline-task` (JSON): it keeps
// what PushMsg has no field for (id, priority, seq, webhook) and is authoritative when present.
// Records without it (written by goim) are read from the PushMsg alone.
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { TaskHash } from '../task.ts';
import { broadcastTarget, encodePushPayload, OP_MESSAGE, OP_TASK, pushPayload, roomTarget, usersTarget, type PushPayload } from '../../contract/push-message.ts';

// The op codes are the push contract's; re-exported for the codec's users.
export { OP_MESSAGE, OP_TASK };
export const TASK_HEADER = 'pushline-task';

const PUSH_PROTO = fileURLToPath(new URL('../../../proto/push.proto', import.meta.url));
let pushMsgType: protobuf.Type | null = null;
function PushMsg(): protobuf.Type {
  return (pushMsgType ??= protobuf.loadSync(PUSH_PROTO).lookupType('ChatRoom.Push.PushMsg'));
}

/** Header value of a consumed record as text (the client hands over Buffers). */
export function headerText(headers: Map<unknown, unknown> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [k, v] of headers) if (String(k) === name) return Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  return undefined;
}

export const PUSH_TYPES = { PUSH: 0, ROOM: 1, BROADCAST: 2 } as const;

export interface PushMsgFields {
  type: number;
  operation: number;
  speed?: number;
  server?: string;
  room?: string;
  keys?: string[];
  msg?: Uint8Array;
}

export function encodePushMsg(fields: PushMsgFields): Buffer {
  const type = PushMsg();
  return Buffer.from(type.encode(type.create(fields)).finish());
}

export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

export function decodePushMsg(bytes: Uint8Array): Required<Omit<PushMsgFields, 'msg'>> & { msg: Buffer } {
  let message: protobuf.Message;
  try {
    message = PushMsg().decode(bytes);
  } catch (err) {
    throw new DecodeError(`not a goim PushMsg: ${(err as Error).message}`);
  }
  const o = PushMsg().toObject(message, { defaults: true, longs: Number, bytes: Buffer }) as Required<PushMsgFields>;
  return { type: o.type, operation: o.operation, speed: o.speed, server: o.server, room: o.room, keys: o.keys, msg: Buffer.from(o.msg) };
}

/** What a record carries: a task as logic would submit it (no id yet, unless pushline wrote it). */
export interface DecodedTask {
  type: string;
  priority?: number;
  payload?: string;
  hookUrl?: string;
  fields: Record<string, string>;
  /** The hash pushline wrote (header), when present. */
  hash?: TaskHash;
}

/** Encodes a task hash (as the engine would store it) into a record value and headers. */
export function encodeTask(hash: TaskHash): { value: Buffer; headers: Record<string, string> } {
  const headers = { [TASK_HEADER]: JSON.stringify(hash) };
  if (hash.type === 'push' && hash.payload) {
    const push = JSON.parse(hash.payload) as PushPayload;
    const msg = Buffer.from(JSON.stringify(push.message));
    if (push.mode === 'room') return { value: encodePushMsg({ type: PUSH_TYPES.ROOM, operation: OP_MESSAGE, room: push.roomId ?? '', msg }), headers };
    if (push.mode === 'users') return { value: encodePushMsg({ type: PUSH_TYPES.PUSH, operation: OP_MESSAGE, keys: push.userIds ?? [], msg }), headers };
    return { value: encodePushMsg({ type: PUSH_TYPES.BROADCAST, operation: OP_MESSAGE, msg }), headers };
  }
  const { type, priority, payload, hook_url, ...rest } = hash;
  const envelope = { type, priority: Number(priority), ...(payload !== undefined ? { payload } : {}), ...(hook_url ? { hook_url } : {}), fields: rest };
  return { value: encodePushMsg({ type: PUSH_TYPES.PUSH, operation: OP_TASK, server: type ?? '', msg: Buffer.from(JSON.stringify(envelope)) }), headers };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new DecodeError(`${what} is not valid JSON`);
  }
}

/**
 * Reads a record back into a task. `header` is the `pushline-task` header's text when the
 * record has one. Anything unreadable is a DecodeError naming the problem, never a crash.
 */
export function decodeTask(value: Uint8Array | null | undefined, header?: string): DecodedTask {
  if (header !== undefined) {
    const hash = parseJson(header, `header ${TASK_HEADER}`);
    if (!hash || typeof hash !== 'object' || typeof (hash as TaskHash).type !== 'string') throw new DecodeError(`header ${TASK_HEADER} must be a task hash with a type`);
    const h = hash as TaskHash;
    const { type, priority, payload, hook_url, id: _id, status: _s, attempts: _a, created_at: _c, ...fields } = h;
    return { type: type!, ...(priority ? { priority: Number(priority) } : {}), ...(payload !== undefined ? { payload } : {}), ...(hook_url ? { hookUrl: hook_url } : {}), fields, hash: h };
  }
  if (!value || value.length === 0) throw new DecodeError('empty record value');
  const m = decodePushMsg(value);
  if (m.operation === OP_TASK) {
    const envelope = parseJson(m.msg.toString('utf8'), 'OP_TASK msg') as { type?: unknown; priority?: unknown; payload?: unknown; hook_url?: unknown; fields?: unknown };
    if (!envelope || typeof envelope.type !== 'string' || !envelope.type) throw new DecodeError('OP_TASK msg needs a string "type"');
    const fields = envelope.fields && typeof envelope.fields === 'object' ? Object.fromEntries(Object.entries(envelope.fields).map(([k, v]) => [k, String(v)])) : {};
    return {
      type: envelope.type,
      ...(typeof envelope.priority === 'number' ? { priority: envelope.priority } : {}),
      ...(typeof envelope.payload === 'string' ? { payload: envelope.payload } : envelope.payload !== undefined ? { payload: JSON.stringify(envelope.payload) } : {}),
      ...(typeof envelope.hook_url === 'string' ? { hookUrl: envelope.hook_url } : {}),
      fields,
    };
  }
  // A goim push: the message body is JSON when it parses as an object, else kept as text.
  const text = m.msg.toString('utf8');
  let message: Record<string, unknown>;
  try {
    const parsed = JSON.parse(text) as unknown;
    message = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { content: parsed };
  } catch {
    message = { content: text };
  }
  if (m.type === PUSH_TYPES.ROOM) {
    if (!m.room) throw new DecodeError('ROOM PushMsg without a room');
    return { type: 'push', payload: encodePushPayload(pushPayload(roomTarget(m.room), message)), fields: { room_id: m.room } };
  }
  if (m.type === PUSH_TYPES.PUSH) {
    if (m.keys.length === 0) throw new DecodeError('PUSH PushMsg without keys');
    // goim's keys named connections of its own comets; after the move they are read as user ids.
    return { type: 'push', payload: encodePushPayload(pushPayload(usersTarget(m.keys), message)), fields: {} };
  }
  if (m.type === PUSH_TYPES.BROADCAST) return { type: 'push', payload: encodePushPayload(pushPayload(broadcastTarget(), message)), fields: {} };
  throw new DecodeError(`PushMsg type ${m.type} is not PUSH, ROOM or BROADCAST`);
}

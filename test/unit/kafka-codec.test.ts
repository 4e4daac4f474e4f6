// The Kafka wire format (no broker needed): goim PushMsg for pushes, OP_TASK envelopes for other
// tasks, the pushline-task header, and unreadable records as clear errors.
import { describe, expect, it } from 'vitest';
import { taskHashOf } from '../../src/queue/backend.ts';
import { decodePushMsg, decodeTask, DecodeError, encodePushMsg, encodeTask, OP_TASK, PUSH_TYPES, TASK_HEADER } from '../../src/queue/backends/kafka-codec.ts';
import { OrderedCommits } from '../../src/queue/backends/kafka-stream.ts';

const roomPush = taskHashOf('000000000007', {
  type: 'push',
  priority: 5,
  payload: JSON.stringify({ mode: 'room', roomId: 'video_123', message: { content: '大家好' } }),
  fields: { room_id: 'video_123', request_id: 'r1' },
}, 1_700_000_000_000, 42);

describe('kafka codec', () => {
  it("writes a room push as goim's ROOM PushMsg and reads it back whole through the header", () => {
    const { value, headers } = encodeTask(roomPush);
    expect(decodePushMsg(value)).toMatchObject({ type: PUSH_TYPES.ROOM, operation: 4, room: 'video_123', msg: Buffer.from('{"content":"大家好"}') });
    const back = decodeTask(value, headers[TASK_HEADER]);
    expect(back.hash).toEqual(roomPush);
    expect(back).toMatchObject({ type: 'push', priority: 5, fields: { room_id: 'video_123', request_id: 'r1', seq: '42' } });
  });

  it('reads records goim wrote (no header): ROOM, PUSH (keys as user ids), BROADCAST, text bodies', () => {
    const room = decodeTask(encodePushMsg({ type: PUSH_TYPES.ROOM, operation: 4, room: 'r1', msg: Buffer.from('{"content":"hi"}') }));
    expect(room).toMatchObject({ type: 'push', fields: { room_id: 'r1' } });
    expect(JSON.parse(room.payload!)).toEqual({ mode: 'room', roomId: 'r1', message: { content: 'hi' } });
    const users = decodeTask(encodePushMsg({ type: PUSH_TYPES.PUSH, operation: 4, keys: ['u1', 'u2'], msg: Buffer.from('plain words') }));
    expect(JSON.parse(users.payload!)).toEqual({ mode: 'users', userIds: ['u1', 'u2'], message: { content: 'plain words' } });
    const all = decodeTask(encodePushMsg({ type: PUSH_TYPES.BROADCAST, operation: 4, msg: Buffer.from('[1,2]') }));
    expect(JSON.parse(all.payload!)).toEqual({ mode: 'broadcast', message: { content: [1, 2] } });
  });

  it('carries other tasks as OP_TASK envelopes that decode without the header', () => {
    const hash = taskHashOf('000000000008', { type: 'audio', priority: 2, hookUrl: 'https://example.test/hook', fields: { audio: 'https://example.test/a.wav' } }, 1, undefined);
    const { value } = encodeTask(hash);
    expect(decodePushMsg(value)).toMatchObject({ operation: OP_TASK, server: 'audio' });
    expect(decodeTask(value)).toMatchObject({ type: 'audio', priority: 2, hookUrl: 'https://example.test/hook', fields: { audio: 'https://example.test/a.wav' } });
  });

  it.each([
    ['random bytes', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), undefined, /not a goim PushMsg/],
    ['an empty value', Buffer.alloc(0), undefined, /empty record value/],
    ['a ROOM without a room', encodePushMsg({ type: PUSH_TYPES.ROOM, operation: 4, msg: Buffer.from('x') }), undefined, /without a room/],
    ['a PUSH without keys', encodePushMsg({ type: PUSH_TYPES.PUSH, operation: 4, msg: Buffer.from('x') }), undefined, /without keys/],
    ['an OP_TASK with bad JSON', encodePushMsg({ type: 0, operation: OP_TASK, msg: Buffer.from('{nope') }), undefined, /OP_TASK msg is not valid JSON/],
    ['an OP_TASK without type', encodePushMsg({ type: 0, operation: OP_TASK, msg: Buffer.from('{}') }), undefined, /needs a string "type"/],
    ['a bad header', Buffer.alloc(0), '{"no":"type"}', /must be a task hash with a type/],
    ['an unknown PushMsg type', encodePushMsg({ type: 7, operation: 4, msg: Buffer.from('x') }), undefined, /type 7 is not PUSH, ROOM or BROADCAST/],
  ])('refuses %s with a DecodeError naming the problem', (_what, value, header, message) => {
    expect(() => decodeTask(value, header)).toThrow(DecodeError);
    expect(() => decodeTask(value, header)).toThrow(message);
  });
});

describe('ordered commits', () => {
  it('commits a partition only up to the first record still running', async () => {
    const committed: string[] = [];
    const record = (partition: number, offset: number) => ({ topic: 't', partition, offset: BigInt(offset), commit: () => void committed.push(`${partition}:${offset}`) });
    const commits = new OrderedCommits();
    const [a0, a1, a2, b0] = [commits.track(record(0, 0)), commits.track(record(0, 1)), commits.track(record(0, 2)), commits.track(record(1, 0))];
    await commits.finish(a1);
    await commits.finish(a2);
    expect(committed).toEqual([]); // 0:0 still running: nothing of partition 0 may be committed
    await commits.finish(b0);
    expect(committed).toEqual(['1:0']);
    await commits.finish(a0);
    expect(committed).toEqual(['1:0', '0:2']); // one commit covers 0..2
  });
});

// The protos load with the toolchain the services will use, and keep goim's field numbers
// (push.proto is the Kafka wire format: a renumbering would misread the old topic).
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { loadSync } from '@grpc/proto-loader';

const proto = (name: string) => fileURLToPath(new URL(`../../proto/${name}`, import.meta.url));

describe('proto/push.proto', () => {
  it("encodes goim's PushMsg with goim's field numbers", () => {
    const root = protobuf.loadSync(proto('push.proto'));
    const PushMsg = root.lookupType('ChatRoom.Push.PushMsg');
    const numbers = Object.fromEntries(Object.values(PushMsg.fields).map((f) => [f.name, f.id]));
    expect(numbers).toEqual({ type: 1, operation: 2, speed: 3, server: 4, room: 5, keys: 6, msg: 7 });
    const bytes = PushMsg.encode(PushMsg.create({ type: 1, operation: 4, room: 'video_123', msg: Buffer.from('{"content":"hi"}') })).finish();
    // type=ROOM (field 1, varint 1), operation=4 (field 2), room (field 5, length-delimited)
    expect(Buffer.from(bytes).subarray(0, 4)).toEqual(Buffer.from([0x08, 0x01, 0x10, 0x04]));
    const decoded = PushMsg.toObject(PushMsg.decode(bytes), { enums: String });
    expect(decoded).toMatchObject({ type: 'ROOM', operation: 4, room: 'video_123' });
  });
});

describe('proto/comet.proto', () => {
  it('defines ChatRoom.Comet.Comet with the goim methods', () => {
    const definition = loadSync(proto('comet.proto'), { keepCase: true });
    const service = definition['ChatRoom.Comet.Comet'] as Record<string, { path: string }>;
    expect(Object.keys(service).sort()).toEqual(['Broadcast', 'BroadcastRoom', 'BroadcastRooms', 'PushMsg', 'Rooms']);
    expect(service.BroadcastRoom!.path).toBe('/ChatRoom.Comet.Comet/BroadcastRoom');
  });
});

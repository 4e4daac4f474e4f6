// Server reflection serves descriptors that strict clients accept (map fields described the
// way protoc describes them), and the README's grpcurl example does what it says: a client
// that builds its request from the reflected descriptor and the README's JSON (as grpcurl does)
// delivers {"content":"test message"} to the room.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_GRPC_TOKEN, startPushStack, type PushStack } from '../helpers/stack.ts';
import { serverMessages } from '../helpers/ws.ts';
import { waitFor } from '../helpers/wait.ts';

interface FieldDesc { name: string; number: number; label: number; type: number; typeName?: string }
interface MessageDesc {
  name: string;
  field?: FieldDesc[];
  nestedType?: MessageDesc[];
  enumType?: unknown[];
  extension?: unknown[];
  oneofDecl?: unknown[];
  extensionRange?: unknown[];
  options?: { mapEntry?: boolean };
}
interface FileDesc { name: string; package?: string; messageType?: MessageDesc[] }

const LABEL_OPTIONAL = 1;
const LABEL_REPEATED = 3;
const TYPE_MESSAGE = 11;
/** Key types protobuf forbids in maps: double, float, group, message, bytes, enum. */
const BAD_KEY_TYPES = new Set([1, 2, 10, 11, 12, 14]);

const camelEntry = (field: string) => {
  const camel = field.replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase()).replace(/_/g, '');
  return `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`;
};

/**
 * The rules protobuf's DescriptorBuilder (C++, used by Python's protobuf) applies to map entries
 * (ValidateMapEntry): a message with options.map_entry must be the nested `<Field>Entry` type of
 * a repeated message field of its parent, with exactly `key = 1` and `value = 2`, both optional,
 * nothing else inside, and a legal key type. Anything else fails with "map_entry should not be
 * set explicitly". Returns every violation found.
 */
function mapEntryViolations(file: FileDesc): string[] {
  const problems: string[] = [];
  const visit = (message: MessageDesc, scope: string) => {
    const fullName = `${scope}.${message.name}`;
    for (const nested of message.nestedType ?? []) {
      const nestedName = `${fullName}.${nested.name}`;
      if (nested.options?.mapEntry) {
        const users = (message.field ?? []).filter(
          (f) => f.type === TYPE_MESSAGE && (f.typeName === nestedName || f.typeName === nested.name || f.typeName === `${message.name}.${nested.name}`),
        );
        const why: string[] = [];
        if (users.length !== 1) why.push(`used by ${users.length} fields`);
        for (const f of users) {
          if (f.label !== LABEL_REPEATED) why.push(`field ${f.name} is not repeated`);
          if (nested.name !== camelEntry(f.name)) why.push(`named ${nested.name}, expected ${camelEntry(f.name)}`);
        }
        const [key, value, ...more] = nested.field ?? [];
        if (!key || key.name !== 'key' || key.number !== 1 || key.label !== LABEL_OPTIONAL) why.push('no optional key = 1');
        if (!value || value.name !== 'value' || value.number !== 2 || value.label !== LABEL_OPTIONAL) why.push('no optional value = 2');
        if (more.length > 0) why.push('extra fields');
        if (key && BAD_KEY_TYPES.has(key.type)) why.push(`key type ${key.type} not allowed`);
        for (const part of ['nestedType', 'enumType', 'extension', 'oneofDecl', 'extensionRange'] as const) {
          if ((nested[part] ?? []).length > 0) why.push(`has ${part}`);
        }
        if (why.length > 0) problems.push(`${nestedName}: map_entry should not be set explicitly (${why.join('; ')})`);
      } else {
        visit(nested, fullName);
      }
    }
  };
  for (const message of file.messageType ?? []) {
    if (message.options?.mapEntry) problems.push(`${message.name}: map_entry on a top-level message`);
    visit(message, file.package ? `.${file.package}` : '');
  }
  return problems;
}

describe('gRPC server reflection', () => {
  let stack: PushStack;
  let files: Buffer[];
  beforeAll(async () => {
    stack = await startPushStack(1);
    files = await reflectFiles(stack.comets[0]!.cometId, 'ChatRoom.Comet.Comet');
  });
  afterAll(async () => stack?.close());

  function authorized(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${STACK_GRPC_TOKEN}`);
    return md;
  }

  /** The FileDescriptorProtos the comet serves for `symbol`, over real gRPC. */
  async function reflectFiles(address: string, symbol: string): Promise<Buffer[]> {
    const protoPath = createRequire(import.meta.url).resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
    const def = grpc.loadPackageDefinition(loadSync(protoPath, { keepCase: true })) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    type Reply = { file_descriptor_response?: { file_descriptor_proto: Buffer[] }; error_response?: { error_message: string } };
    const client = new def.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      ServerReflectionInfo(md: grpc.Metadata): grpc.ClientDuplexStream<object, Reply>;
    };
    const stream = client.ServerReflectionInfo(authorized());
    try {
      const reply = await new Promise<Reply>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
        stream.write({ file_containing_symbol: symbol });
      });
      if (!reply.file_descriptor_response) throw new Error(reply.error_response?.error_message ?? 'no descriptor');
      return reply.file_descriptor_response.file_descriptor_proto;
    } finally {
      stream.end();
      client.close();
    }
  }

  const decoded = () => files.map((b) => descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(b), { defaults: false }) as unknown as FileDesc);

  it('describes map fields the way protoc does, so strict descriptor pools accept them', () => {
    expect(files.length).toBeGreaterThan(0);
    const all = decoded();
    expect(all.flatMap(mapEntryViolations)).toEqual([]);
    const rooms = all.flatMap((f) => f.messageType ?? []).find((m) => m.name === 'RoomsReply')!;
    expect(rooms.nestedType?.map((t) => t.name)).toEqual(['RoomsEntry']);
    // protobufjs, reading the descriptor back, sees a map field again.
    const root = protobuf.Root.fromDescriptor({ file: all as never });
    const field = root.lookupType('ChatRoom.Comet.RoomsReply').fields.rooms!;
    expect(field.map).toBe(true);
  });

  const python = spawnSync('python3', ['-c', 'import google.protobuf'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!python)('is accepted by Python protobuf (skipped: python3 with google.protobuf is not installed)', () => {
    const script = [
      'import sys, base64',
      'from google.protobuf import descriptor_pb2, descriptor_pool',
      'pool = descriptor_pool.DescriptorPool()',
      'for line in sys.stdin.read().split():',
      '    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(line)))',
      "print(pool.FindMessageTypeByName('ChatRoom.Comet.RoomsReply').fields_by_name['rooms'].message_type.GetOptions().map_entry)",
    ].join('\n');
    const run = spawnSync('python3', ['-c', script], { input: files.map((f) => f.toString('base64')).join('\n'), encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('True');
  });

  it("the README's grpcurl example (body in base64) delivers the seed's test message", async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const command = readme.split('\n').find((l) => l.startsWith('grpcurl') && l.includes('ChatRoom.Comet.Comet/BroadcastRoom'));
    expect(command, 'README has a grpcurl BroadcastRoom example').toBeDefined();
    expect(command).toContain('-H "authorization: Bearer $COMET_GRPC_TOKEN"');
    const json = JSON.parse(/-d '([^']+)'/.exec(command!)![1]!) as { roomId: string };

    // What grpcurl does: types from reflection, the request from the JSON (bytes = base64).
    const root = protobuf.Root.fromDescriptor({ file: decoded() as never });
    const Req = root.lookupType('ChatRoom.Comet.BroadcastRoomReq');
    const Reply = root.lookupType('ChatRoom.Comet.BroadcastRoomReply');
    const request = Buffer.from(Req.encode(Req.fromObject(json)).finish());

    const viewer = await stack.connect(stack.comets[0]!, 'readme_viewer', json.roomId);
    const client = new grpc.Client(stack.comets[0]!.cometId, grpc.credentials.createInsecure());
    const reply = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest('/ChatRoom.Comet.Comet/BroadcastRoom', (b: Buffer) => b, (b: Buffer) => b, request, authorized(), (err, res) => (err ? reject(err) : resolve(res!))),
    );
    client.close();
    expect(Reply.toObject(Reply.decode(reply))).toEqual({ delivered: 1 });
    await waitFor(() => serverMessages(viewer).length === 1, 'viewer got the README message');
    expect(serverMessages(viewer)).toEqual([{ content: 'test message' }]);
    viewer.ws.close();
  });
});

// Decoding of the comet's gRPC requests that tells the caller what is wrong. grpc-js answers a
// deserializer that throws with INTERNAL ("Error deserializing request") and protobufjs turns
// invalid UTF-8 in string fields into U+FFFD without a word; so the deserializer here never
// throws: it returns an Undecodable marker, which the handlers turn into INVALID_ARGUMENT.
import { isUtf8 } from 'node:buffer';
import type * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export interface Undecodable {
  undecodable: string;
}

export function isUndecodable(request: unknown): request is Undecodable {
  return typeof request === 'object' && request !== null && typeof (request as Undecodable).undecodable === 'string';
}

const LENGTH_DELIMITED = 2;

/** The path (e.g. `keys[2]`, `protos[0].body`) of the first string field that is not UTF-8. */
function firstNonUtf8String(type: protobuf.Type, reader: protobuf.Reader, end: number, path: string): string | null {
  const seen = new Map<number, number>();
  while (reader.pos < end) {
    const tag = reader.uint32();
    const wireType = tag & 7;
    const field = type.fieldsById[tag >>> 3];
    const nested = field?.resolvedType instanceof protobuf.Type && !field.map ? field.resolvedType : null;
    if (!field || wireType !== LENGTH_DELIMITED || (field.type !== 'string' && !nested)) {
      reader.skipType(wireType);
      continue;
    }
    const index = seen.get(field.id) ?? 0;
    seen.set(field.id, index + 1);
    const name = `${path}${field.name}${field.repeated ? `[${index}]` : ''}`;
    if (nested) {
      const length = reader.uint32();
      const bad = firstNonUtf8String(nested, reader, reader.pos + length, `${name}.`);
      if (bad) return bad;
    } else if (!isUtf8(reader.bytes())) {
      return name;
    }
  }
  if (reader.pos !== end) throw new Error('a field runs past the end of its message');
  return null;
}

/**
 * Wraps every method's request deserializer of a proto-loader service definition. `root` is the
 * same proto loaded with protobufjs, for walking the raw bytes.
 */
export function withExplainedDecoding(service: grpc.ServiceDefinition, root: protobuf.Root): grpc.ServiceDefinition {
  const wrapped: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  root.resolveAll();
  for (const [name, method] of Object.entries(service)) {
    // path is /<package>.<Service>/<Method>
    const [, serviceName, methodName] = method.path.split('/');
    const type = root.lookupService(serviceName!).methods[methodName!]?.resolvedRequestType ?? null;
    const typeName = type?.name;
    const decode = method.requestDeserialize;
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          if (type) {
            const bad = firstNonUtf8String(type, protobuf.Reader.create(bytes), bytes.length, '');
            if (bad) return { undecodable: `${bad} is not valid UTF-8` } satisfies Undecodable;
          }
          return decode(bytes);
        } catch (err) {
          return { undecodable: `the request is not a valid ${typeName ?? name} message (${(err as Error).message})` } satisfies Undecodable;
        }
      },
    };
  }
  return wrapped as grpc.ServiceDefinition;
}

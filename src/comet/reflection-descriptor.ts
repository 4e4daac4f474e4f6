// The descriptors server reflection serves, with protobufjs's map fields put right. protobufjs
// (behind proto-loader) describes `map<string, bool> rooms` with a nested entry message named
// `Rooms` and a relative type name; protoc's rule is `RoomsEntry`, and strict descriptor pools
// (Python's protobuf, the C++ DescriptorPool grpcurl-like tools build on) refuse anything else
// with "map_entry should not be set explicitly". Every other part of the descriptor is kept.
import type { PackageDefinition } from '@grpc/proto-loader';
import descriptor from 'protobufjs/ext/descriptor.js';

const LABEL_REPEATED = 3;
const TYPE_MESSAGE = 11;

interface MessageDescriptor {
  name: string;
  field?: { name: string; label?: number; type?: number; typeName?: string }[];
  nestedType?: MessageDescriptor[];
  options?: { mapEntry?: boolean };
}

/** protoc's entry name: the field name in CamelCase + "Entry" (`user_rooms` → `UserRoomsEntry`). */
export function mapEntryName(fieldName: string): string {
  const camel = fieldName.replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase()).replace(/_/g, '');
  return `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`;
}

function fixMessage(message: MessageDescriptor, scope: string): void {
  const fullName = `${scope}.${message.name}`;
  const entries = new Map((message.nestedType ?? []).filter((t) => t.options?.mapEntry).map((t) => [t.name, t]));
  for (const field of message.field ?? []) {
    if (field.label !== LABEL_REPEATED || field.type !== TYPE_MESSAGE || !field.typeName) continue;
    const entry = entries.get(field.typeName.slice(field.typeName.lastIndexOf('.') + 1));
    if (!entry) continue;
    entry.name = mapEntryName(field.name);
    field.typeName = `${fullName}.${entry.name}`;
  }
  for (const nested of message.nestedType ?? []) if (!nested.options?.mapEntry) fixMessage(nested, fullName);
}

/** One serialized FileDescriptorProto with its map entries named the way protoc names them. */
export function fixMapEntries(bytes: Uint8Array): Uint8Array {
  const file = descriptor.FileDescriptorProto.decode(bytes) as unknown as { package?: string; messageType?: MessageDescriptor[] };
  const scope = file.package ? `.${file.package}` : '';
  for (const message of file.messageType ?? []) fixMessage(message, scope);
  return descriptor.FileDescriptorProto.encode(file as never).finish();
}

/** The package definition to hand to ReflectionService: same entries, corrected descriptors. */
export function reflectionDefinition(definition: PackageDefinition): PackageDefinition {
  const fixed = new Map<Uint8Array, Uint8Array>();
  const fix = (bytes: Uint8Array) => fixed.get(bytes) ?? fixed.set(bytes, fixMapEntries(bytes)).get(bytes)!;
  return Object.fromEntries(
    Object.entries(definition).map(([name, entry]) =>
      'fileDescriptorProtos' in entry && Array.isArray(entry.fileDescriptorProtos)
        ? [name, { ...entry, fileDescriptorProtos: entry.fileDescriptorProtos.map((b) => Buffer.from(fix(b))) }]
        : [name, entry],
    ),
  ) as PackageDefinition;
}

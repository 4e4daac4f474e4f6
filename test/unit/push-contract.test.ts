// The push contract has one home, src/contract: push payloads, message bodies, op codes, the
// comet proto and status messages are built there and nowhere else, and no process (logic, job,
// comet) imports another process's folder to speak it. A grep over src/ keeps it that way.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));
const CONTRACT = join(SRC, 'contract');
const PROCESSES = ['logic', 'job', 'comet'];

/** Process-to-process imports that are not the push contract, and why they may stay. */
const ALLOWED_CROSS_IMPORTS = new Set([
  // logic accepts the task types of custom processors, so it loads the same registry job does.
  'logic/main.ts -> job/custom-processors.ts',
  // The dashboard lists the job workers' registry entries.
  'logic/web/routes.ts -> job/worker-registry.ts',
]);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Code lines (comments left out: they may name what they do not build). */
function codeLines(path: string): { line: number; text: string }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((text, i) => ({ line: i + 1, text }))
    .filter(({ text }) => !/^\s*(\/\/|\*|\/\*)/.test(text));
}

const SHAPES: [string, RegExp][] = [
  ['an op code definition', /\bconst\s+OP_[A-Z_]+\s*=/],
  ['a literal op code', /\b(op|operation|protoOp)\s*:\s*\d|\.op\s*\?\?\s*\d/],
  ['a message body ({ id, … } as JSON)', /JSON\.stringify\(\s*\{\s*id\b/],
  ['a push payload ({ mode: … })', /\bmode\s*:\s*'(room|users|broadcast)'/],
  ['a contract type definition', /\binterface\s+(PushPayload|PushTarget|ProtoMsg|TaskStatusEvent)\b|\btype\s+(PushPayload|PushTarget|ProtoMsg|TaskStatusEvent)\s*=/],
  ['a status message', /type\s*:\s*'task_status'/],
  ['the comet proto path', /proto\/comet\.proto/],
];

describe('the push contract (src/contract)', () => {
  const outside = sourceFiles(SRC).filter((f) => !f.startsWith(CONTRACT + sep));

  it('is the only place that builds push payloads, message bodies, op codes, protos and status messages', () => {
    const found: string[] = [];
    for (const file of outside) {
      for (const { line, text } of codeLines(file)) {
        for (const [what, pattern] of SHAPES) {
          if (pattern.test(text)) found.push(`${relative(SRC, file)}:${line}: ${what}: ${text.trim()}`);
        }
      }
    }
    expect(found).toEqual([]);
  });

  it('is what logic, job and comet share: none imports another process folder', () => {
    const found: string[] = [];
    for (const file of outside) {
      const from = relative(SRC, file).split(sep).join('/');
      const process = from.split('/')[0]!;
      if (!PROCESSES.includes(process)) continue;
      for (const { text } of codeLines(file)) {
        const specifier = /\bfrom\s+'(\.[^']+)'/.exec(text)?.[1];
        if (!specifier) continue;
        const to = relative(SRC, resolve(dirname(file), specifier)).split(sep).join('/');
        const target = to.split('/')[0]!;
        if (target === process || !PROCESSES.includes(target)) continue;
        if (!ALLOWED_CROSS_IMPORTS.has(`${from} -> ${to}`)) found.push(`${from} -> ${to}`);
      }
    }
    expect(found).toEqual([]);
  });
});

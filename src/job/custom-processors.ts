// Task types from the user's own code: JOB_PROCESSORS names ES modules (comma-separated paths,
// relative to the working directory, or package names) whose default export is a processor
// or an array of them. job runs them like its own (same leases, retries, webhooks and status
// notifications); logic reads the same setting to accept their types at POST /generate.
// A module that cannot be loaded or exports something else is a config error (exit 2).
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../config/load.ts';
import type { Processor } from './processor.ts';

/** What a type may be called: it travels in URLs, logs, metrics labels and Redis hashes. */
const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** The module specifiers in a JOB_PROCESSORS value. */
export function processorModules(setting: string | undefined): string[] {
  return (setting ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

function importTarget(spec: string, cwd: string): string {
  // Paths are the user's files, relative to where the process runs (like .env); anything else
  // is a package name, resolved the way an import from pushline's own code would be.
  if (spec.startsWith('.') || isAbsolute(spec)) return pathToFileURL(resolve(cwd, spec)).href;
  return spec;
}

function checkProcessor(value: unknown, spec: string): Processor {
  const p = value as Partial<Processor> | null;
  if (!p || typeof p !== 'object' || typeof p.type !== 'string' || typeof p.process !== 'function') {
    throw new ConfigError([`JOB_PROCESSORS: ${spec} must export (default) a processor { type: string, process(ctx) } or an array of them`]);
  }
  if (!TYPE_NAME.test(p.type)) {
    throw new ConfigError([`JOB_PROCESSORS: ${spec}: type ${JSON.stringify(p.type)} must be 1-64 letters, digits, _ . - starting with a letter`]);
  }
  return p as Processor;
}

/** Loads every module JOB_PROCESSORS names; `builtIn` types may not be taken again. */
export async function loadCustomProcessors(setting: string | undefined, builtIn: readonly string[], cwd = process.cwd()): Promise<Processor[]> {
  const found: Processor[] = [];
  const taken = new Set(builtIn);
  for (const spec of processorModules(setting)) {
    let mod: { default?: unknown };
    try {
      mod = (await import(importTarget(spec, cwd))) as { default?: unknown };
    } catch (err) {
      throw new ConfigError([`JOB_PROCESSORS: cannot load ${spec}: ${(err as Error).message}`]);
    }
    const exported = mod.default;
    for (const value of Array.isArray(exported) ? exported : [exported]) {
      const processor = checkProcessor(value, spec);
      if (taken.has(processor.type)) throw new ConfigError([`JOB_PROCESSORS: ${spec}: type "${processor.type}" is already taken (built-in or another module)`]);
      taken.add(processor.type);
      found.push(processor);
    }
  }
  return found;
}

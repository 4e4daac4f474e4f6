#!/usr/bin/env node
// Entry point of the `pushline` CLI. The sources are TypeScript run through tsx's loader,
// so a clean checkout needs no build step and no generated output is ever committed.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');

import { describe, expect, it } from 'vitest';
import { AcceptedCredentials } from '../../src/util/accepted-credentials.ts';

describe('AcceptedCredentials', () => {
  it('knows only the exact values it was told passed, and nothing that is not a string', () => {
    const accepted = new AcceptedCredentials();
    accepted.remember('Bearer right');
    accepted.remember(undefined);
    accepted.remember(['Bearer list']);
    expect(accepted.has('Bearer right')).toBe(true);
    expect(accepted.has('Bearer righ')).toBe(false);
    expect(accepted.has('Bearer right ')).toBe(false);
    expect(accepted.has(undefined)).toBe(false);
    expect(accepted.has(['Bearer list'])).toBe(false);
  });

  it('stays bounded: once full it starts again empty', () => {
    const accepted = new AcceptedCredentials(2);
    accepted.remember('a');
    accepted.remember('b');
    accepted.remember('c');
    expect([accepted.has('a'), accepted.has('b'), accepted.has('c')]).toEqual([false, false, true]);
  });
});

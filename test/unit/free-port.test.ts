// freePort hands out ports that a bind(0) or an outgoing connection elsewhere on the machine
// cannot be given in the gap before the caller's child binds them: below the ephemeral range.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freePort, isPortFree } from '../../src/local/redis-server.ts';

const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);

describe('freePort', () => {
  it('picks free ports below the ephemeral range, and not always the same one', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(10_000);
      expect(port).toBeLessThan(low!);
    }
    expect(new Set(ports).size).toBeGreaterThan(1);
    expect(await isPortFree(ports[0]!)).toBe(true);
  });
});

// Routing keys against real Redis: data written by hand the seed docs' way routes as it
// should; comet-side register / disconnect / purge keep every key consistent.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { routingKeys } from '../../src/routing/keys.ts';
import { RoutingLookup } from '../../src/routing/lookup.ts';
import { RoutingRegistry } from '../../src/routing/registry.ts';
import { uniquePrefix, useTestRedis } from '../helpers/redis.ts';

const shared = useTestRedis();

describe('the seed data set, written with redis-cli', () => {
  it('routes room video_123 to two comets with two connections each', async () => {
    await shared.client.flushdb();
    // The commands of the seed's quick-start doc, verbatim (four users on two comets).
    const seed = `
SADD room:connections:video_123 conn_1
HMSET connection:info:conn_1 comet_id localhost:50051 user_id user_123 room_id video_123
SET user:online:user_123 conn_1
SADD room:connections:video_123 conn_2
HMSET connection:info:conn_2 comet_id localhost:50051 user_id user_456 room_id video_123
SET user:online:user_456 conn_2
SADD room:connections:video_123 conn_3
HMSET connection:info:conn_3 comet_id localhost:50052 user_id user_789 room_id video_123
SET user:online:user_789 conn_3
SADD room:connections:video_123 conn_4
HMSET connection:info:conn_4 comet_id localhost:50052 user_id user_999 room_id video_123
SET user:online:user_999 conn_4
`;
    const cli = spawnSync('redis-cli', ['-p', String(shared.redis.port)], { input: seed, encoding: 'utf8' });
    expect(cli.status).toBe(0);

    const lookup = new RoutingLookup(shared.client, routingKeys());
    const routes = await lookup.room('video_123');
    expect(routes.total).toBe(4);
    expect(routes.stale).toEqual([]);
    expect(routes.byComet.map((r) => [r.cometId, [...r.connIds].sort()])).toEqual([
      ['localhost:50051', ['conn_1', 'conn_2']],
      ['localhost:50052', ['conn_3', 'conn_4']],
    ]);
    // Users written the seed's way (user:online only) are found too.
    const users = await lookup.users(['user_789', 'user_123', 'nobody']);
    expect(users.byComet.map((r) => [r.cometId, r.connIds])).toEqual([
      ['localhost:50051', ['conn_1']],
      ['localhost:50052', ['conn_3']],
    ]);
  });
});

describe('RoutingRegistry', () => {
  it('registers, refreshes and removes a connection in every key, keeping another device online', async () => {
    const keys = routingKeys(uniquePrefix());
    const registry = new RoutingRegistry(shared.client, keys, 300);
    await registry.connect({ connId: 'c1', cometId: 'localhost:50051', userId: 'u1', roomId: 'r1' });
    await registry.connect({ connId: 'c2', cometId: 'localhost:50052', userId: 'u1', roomId: 'r1' });
    expect(await shared.client.hgetall(keys.connectionInfo('c1'))).toEqual({ comet_id: 'localhost:50051', user_id: 'u1', room_id: 'r1' });
    expect((await shared.client.smembers(keys.roomConnections('r1'))).sort()).toEqual(['c1', 'c2']);
    expect((await shared.client.smembers(keys.userConnections('u1'))).sort()).toEqual(['c1', 'c2']);
    expect(await shared.client.smembers(keys.cometConnections('localhost:50051'))).toEqual(['c1']);
    expect(await shared.client.get(keys.userOnline('u1'))).toBe('c2');
    const ttl = await shared.client.ttl(keys.userOnline('u1'));
    expect(ttl).toBeGreaterThan(290);

    expect(await registry.disconnect(['c2'])).toBe(1);
    expect(await shared.client.exists(keys.connectionInfo('c2'))).toBe(0);
    expect(await shared.client.smembers(keys.roomConnections('r1'))).toEqual(['c1']);
    expect(await shared.client.get(keys.userOnline('u1'))).toBe('c1');
    expect(await shared.client.ttl(keys.userOnline('u1'))).toBeGreaterThan(0);

    expect(await registry.disconnect(['c1', 'never-existed'])).toBe(1);
    expect(await shared.client.exists(keys.userOnline('u1'), keys.roomConnections('r1'), keys.userConnections('u1'))).toBe(0);
  });

  it('purges everything a comet registered and drops it from comet:nodes', async () => {
    const keys = routingKeys(uniquePrefix());
    const registry = new RoutingRegistry(shared.client, keys, 300);
    await registry.heartbeatComet('localhost:50051');
    await registry.heartbeatComet('localhost:50052');
    for (let i = 0; i < 1200; i++) {
      await registry.connect({ connId: `a${i}`, cometId: 'localhost:50051', userId: `u${i}`, roomId: `room${i % 3}` });
    }
    await registry.connect({ connId: 'b1', cometId: 'localhost:50052', userId: 'ub', roomId: 'room0' });
    expect(await registry.purgeComet('localhost:50051')).toBe(1200);
    expect(await shared.client.smembers(keys.roomConnections('room0'))).toEqual(['b1']);
    expect(await shared.client.exists(keys.roomConnections('room1'), keys.cometConnections('localhost:50051'), keys.userOnline('u5'))).toBe(0);
    expect(await shared.client.zrange(keys.cometNodes, '0', '-1')).toEqual(['localhost:50052']);
    expect(await registry.staleComets(60_000)).toEqual([]);
    expect(await registry.staleComets(-1)).toEqual(['localhost:50052']);
  });

  it("room lookup uses the comets' per-room tally when it adds up, and reads every member when it does not", async () => {
    const keys = routingKeys(uniquePrefix());
    const registry = new RoutingRegistry(shared.client, keys, 300);
    const lookup = new RoutingLookup(shared.client, keys);
    for (let i = 0; i < 5; i++) await registry.connect({ connId: `t${i}`, cometId: i < 3 ? 'c:1' : 'c:2', userId: `u${i}`, roomId: 'big' });
    expect(await shared.client.hgetall(keys.roomComets('big'))).toEqual({ 'c:1': '3', 'c:2': '2' });
    const fast = await lookup.room('big');
    expect(fast.byComet).toEqual([
      { cometId: 'c:1', count: 3, connIds: [], userIds: [] },
      { cometId: 'c:2', count: 2, connIds: [], userIds: [] },
    ]);
    // A member written by hand (no tally): the counts no longer add up, so every member is read.
    await shared.client.sadd(keys.roomConnections('big'), 'hand');
    await shared.client.hset(keys.connectionInfo('hand'), 'comet_id', 'c:3', 'user_id', 'h', 'room_id', 'big');
    const full = await lookup.room('big');
    expect(full.byComet.map((r) => [r.cometId, r.count, r.connIds.length])).toEqual([['c:1', 3, 3], ['c:2', 2, 2], ['c:3', 1, 1]]);
    // Disconnects keep the tally right, down to removing a comet's entry.
    await registry.disconnect(['t3', 't4', 'hand']);
    expect(await shared.client.hgetall(keys.roomComets('big'))).toEqual({ 'c:1': '3' });
    expect((await lookup.room('big')).byComet).toEqual([{ cometId: 'c:1', count: 3, connIds: [], userIds: [] }]);
  });

  it('lookup drops ids whose info hash is gone from the room set', async () => {
    const keys = routingKeys(uniquePrefix());
    await shared.client.sadd(keys.roomConnections('r'), 'ghost');
    const routes = await new RoutingLookup(shared.client, keys).room('r');
    expect(routes).toEqual({ total: 1, byComet: [], stale: ['ghost'] });
    expect(await shared.client.exists(keys.roomConnections('r'))).toBe(0);
  });
});

describe('batched lookups (job batches)', () => {
  it('rooms() answers each room as room() would, with the replies of its own commands, in one read', async () => {
    const keys = routingKeys(uniquePrefix());
    const registry = new RoutingRegistry(shared.client, keys, 300);
    const lookup = new RoutingLookup(shared.client, keys);
    for (let i = 0; i < 3; i++) await registry.connect({ connId: `a${i}`, cometId: i < 2 ? 'c:1' : 'c:2', userId: `u${i}`, roomId: 'tallied' });
    // Written by hand: no tally, every member is read.
    await shared.client.sadd(keys.roomConnections('by_hand'), 'h1');
    await shared.client.hset(keys.connectionInfo('h1'), 'comet_id', 'c:3', 'user_id', 'h', 'room_id', 'by_hand');
    const rooms = ['tallied', 'by_hand', 'empty'];
    const batched = await lookup.rooms(rooms.map((roomId) => ({ roomId, alongside: (p) => p.set(`${keys.prefix}mark:${roomId}`, roomId) })));
    for (const [i, roomId] of rooms.entries()) {
      expect(batched[i]!.routes).toEqual(await lookup.room(roomId));
      expect(batched[i]!.extra).toEqual(['OK']);
      expect(await shared.client.get(`${keys.prefix}mark:${roomId}`)).toBe(roomId);
    }
  });

  it('usersMany() answers each list as users() would', async () => {
    const keys = routingKeys(uniquePrefix());
    const registry = new RoutingRegistry(shared.client, keys, 300);
    const lookup = new RoutingLookup(shared.client, keys);
    await registry.connect({ connId: 'p1', cometId: 'c:1', userId: 'ann', roomId: 'r' });
    await registry.connect({ connId: 'p2', cometId: 'c:2', userId: 'ann', roomId: 'r' });
    await registry.connect({ connId: 'p3', cometId: 'c:2', userId: 'ben', roomId: 'r' });
    const lists = [['ann'], ['ben', 'nobody'], ['ann', 'ben'], ['nobody']];
    const batched = await lookup.usersMany(lists);
    for (const [i, list] of lists.entries()) {
      const alone = await lookup.users(list);
      expect(batched[i]!.total).toBe(alone.total);
      expect(batched[i]!.byComet.map((r) => [r.cometId, r.count, [...r.connIds].sort(), [...r.userIds].sort()])).toEqual(
        alone.byComet.map((r) => [r.cometId, r.count, [...r.connIds].sort(), [...r.userIds].sort()]),
      );
    }
  });
});

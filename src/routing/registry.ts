// The comet's side of routing: register a connection in every routing key when its socket
// opens, refresh the user's online TTL on heartbeats, remove it when the socket closes, and
// clean up after a comet that died (its own previous run, or another comet that stopped
// heartbeating). Writes go per slot (src/redis/batch.ts): on a Redis Cluster a connection's,
// its room's, its user's and its comet's keys are four slots.
import { readFileSync } from 'node:fs';
import type { ChainableCommander, Redis } from 'ioredis';
import { perSlot } from '../redis/batch.ts';
import { defineLuaCommand } from '../redis/lua-command.ts';
import type { RoutingKeys } from './keys.ts';
import { cometsByHeartbeat } from './lookup.ts';

const LEAVE_ROOM = readFileSync(new URL('./lua/leave-room.lua', import.meta.url), 'utf8');
const LEAVE_USER = readFileSync(new URL('./lua/leave-user.lua', import.meta.url), 'utf8');

type LeaveCommands = ChainableCommander & {
  pushlineLeaveRoom(roomConnections: string, roomComets: string, connId: string, cometId: string): ChainableCommander;
  pushlineLeaveUser(userConnections: string, userOnline: string, connId: string): ChainableCommander;
};

export interface Connection {
  connId: string;
  cometId: string;
  userId: string;
  roomId: string;
}

export class RoutingRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RoutingKeys,
    private readonly onlineTtlSeconds: number,
  ) {
    defineLuaCommand(redis, 'pushlineLeaveRoom', LEAVE_ROOM, 2);
    defineLuaCommand(redis, 'pushlineLeaveUser', LEAVE_USER, 2);
  }

  async connect(c: Connection): Promise<void> {
    const k = this.keys;
    // The info hash goes last: a connection whose info exists is registered everywhere else.
    await perSlot(this.redis, [
      { key: k.roomConnections(c.roomId), add: (p) => p.sadd(k.roomConnections(c.roomId), c.connId).hincrby(k.roomComets(c.roomId), c.cometId, 1) },
      { key: k.userOnline(c.userId), add: (p) => p.set(k.userOnline(c.userId), c.connId, 'EX', this.onlineTtlSeconds).sadd(k.userConnections(c.userId), c.connId) },
      { key: k.cometConnections(c.cometId), add: (p) => p.sadd(k.cometConnections(c.cometId), c.connId) },
    ]);
    await this.redis.hset(k.connectionInfo(c.connId), 'comet_id', c.cometId, 'user_id', c.userId, 'room_id', c.roomId);
  }

  /** Heartbeat from a user's connection: the user stays online for another TTL. */
  async touch(c: Pick<Connection, 'connId' | 'userId'>): Promise<void> {
    const online = this.keys.userOnline(c.userId);
    // The user's latest active connection is the one user:online names (DESIGN §3).
    await this.redis.set(online, c.connId, 'EX', this.onlineTtlSeconds);
  }

  /**
   * Remove connections from every routing key: read each one's info hash, then take it out of
   * its room (leave-room.lua), its user (leave-user.lua) and its comet's set, and drop the info
   * hash last, so an interrupted removal is finished by the next one. Two round trips per 500.
   */
  async disconnect(connIds: readonly string[]): Promise<number> {
    const k = this.keys;
    let removed = 0;
    for (let i = 0; i < connIds.length; i += 500) {
      const batch = connIds.slice(i, i + 500);
      const infos = await perSlot(
        this.redis,
        batch.map((conn) => ({ key: k.connectionInfo(conn), add: (p) => p.hmget(k.connectionInfo(conn), 'comet_id', 'user_id', 'room_id') })),
      );
      const leave: Parameters<typeof perSlot>[1][number][] = [];
      batch.forEach((conn, j) => {
        const [comet, user, room] = (infos[j]?.[0] ?? []) as (string | null)[];
        if (comet || user || room) removed++;
        if (room) leave.push({ key: k.roomConnections(room), add: (p) => (p as LeaveCommands).pushlineLeaveRoom(k.roomConnections(room), k.roomComets(room), conn, comet ?? '') });
        if (user) leave.push({ key: k.userConnections(user), add: (p) => (p as LeaveCommands).pushlineLeaveUser(k.userConnections(user), k.userOnline(user), conn) });
        if (comet) leave.push({ key: k.cometConnections(comet), add: (p) => p.srem(k.cometConnections(comet), conn) });
      });
      await perSlot(this.redis, leave);
      await perSlot(this.redis, batch.map((conn) => ({ key: k.connectionInfo(conn), add: (p) => p.del(k.connectionInfo(conn)) })));
    }
    return removed;
  }

  /** Remove everything a comet registered (its own stale state at start-up, or a dead peer's). */
  async purgeComet(cometId: string): Promise<number> {
    const setKey = this.keys.cometConnections(cometId);
    let removed = 0;
    for (;;) {
      const batch = await this.redis.srandmember(setKey, 500);
      if (batch.length === 0) break;
      removed += await this.disconnect(batch);
      await this.redis.srem(setKey, ...batch);
    }
    await perSlot(this.redis, [
      { key: this.keys.cometNodes, add: (p) => p.zrem(this.keys.cometNodes, cometId) },
      { key: this.keys.cometInfo(cometId), add: (p) => p.del(this.keys.cometInfo(cometId)) },
    ]);
    return removed;
  }

  async heartbeatComet(cometId: string, info?: { wsUrl: string; connections: number; ttlSeconds: number }): Promise<void> {
    const key = this.keys.cometInfo(cometId);
    await perSlot(this.redis, [
      { key: this.keys.cometNodes, add: (p) => p.zadd(this.keys.cometNodes, Date.now(), cometId) },
      ...(info ? [{ key, add: (p: ChainableCommander) => p.hset(key, 'ws_url', info.wsUrl, 'connections', info.connections).expire(key, info.ttlSeconds) }] : []),
    ]);
  }

  /** Live comets (heartbeat within `aliveMs`), least loaded first. */
  async liveComets(aliveMs: number, nowMs = Date.now()): Promise<{ cometId: string; wsUrl: string | null; connections: number }[]> {
    const ids = await cometsByHeartbeat(this.redis, this.keys, 'alive', aliveMs, nowMs);
    const infos = await perSlot(this.redis, ids.map((id) => ({ key: this.keys.cometInfo(id), add: (p) => p.hmget(this.keys.cometInfo(id), 'ws_url', 'connections') })));
    return ids
      .map((cometId, i) => {
        const [wsUrl, connections] = (infos[i]?.[0] ?? []) as (string | null)[];
        return { cometId, wsUrl: wsUrl ?? null, connections: Number(connections ?? 0) };
      })
      .sort((a, b) => a.connections - b.connections);
  }

  /** Last heartbeat (ms) of each comet, null for one not in comet:nodes. */
  async cometHeartbeats(ids: string[]): Promise<(number | null)[]> {
    if (ids.length === 0) return [];
    const scores = await this.redis.zmscore(this.keys.cometNodes, ...ids);
    return scores.map((s) => (s === null ? null : Number(s)));
  }

  /** Comets whose last heartbeat is older than `staleMs`. */
  async staleComets(staleMs: number, nowMs = Date.now()): Promise<string[]> {
    return cometsByHeartbeat(this.redis, this.keys, 'stale', staleMs, nowMs);
  }
}

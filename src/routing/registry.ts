// The comet's side of routing: register a connection in every routing key when its socket
// opens, refresh the user's online TTL on heartbeats, remove it when the socket closes, and
// clean up after a comet that died (its own previous run, or another comet that stopped
// heartbeating).
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { RoutingKeys } from './keys.ts';
import { cometsByHeartbeat } from './lookup.ts';

const DISCONNECT = readFileSync(new URL('./lua/disconnect.lua', import.meta.url), 'utf8');

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
    if (!(redis as unknown as Record<string, unknown>).pushlineDisconnect) {
      redis.defineCommand('pushlineDisconnect', { lua: DISCONNECT, numberOfKeys: 0 });
    }
  }

  async connect(c: Connection): Promise<void> {
    const k = this.keys;
    const result = await this.redis
      .multi()
      .sadd(k.roomConnections(c.roomId), c.connId)
      .hincrby(k.roomComets(c.roomId), c.cometId, 1)
      .hset(k.connectionInfo(c.connId), 'comet_id', c.cometId, 'user_id', c.userId, 'room_id', c.roomId)
      .set(k.userOnline(c.userId), c.connId, 'EX', this.onlineTtlSeconds)
      .sadd(k.userConnections(c.userId), c.connId)
      .sadd(k.cometConnections(c.cometId), c.connId)
      .exec();
    const failed = result?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  /** Heartbeat from a user's connection: the user stays online for another TTL. */
  async touch(c: Pick<Connection, 'connId' | 'userId'>): Promise<void> {
    const online = this.keys.userOnline(c.userId);
    // The user's latest active connection is the one user:online names (DESIGN §3).
    await this.redis.set(online, c.connId, 'EX', this.onlineTtlSeconds);
  }

  async disconnect(connIds: readonly string[]): Promise<number> {
    let removed = 0;
    for (let i = 0; i < connIds.length; i += 500) {
      const batch = connIds.slice(i, i + 500);
      removed += Number(await (this.redis as unknown as { pushlineDisconnect(...a: string[]): Promise<number> }).pushlineDisconnect(this.keys.prefix, ...batch));
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
    await this.redis.multi().zrem(this.keys.cometNodes, cometId).del(this.keys.cometInfo(cometId)).exec();
    return removed;
  }

  async heartbeatComet(cometId: string, info?: { wsUrl: string; connections: number; ttlSeconds: number }): Promise<void> {
    const multi = this.redis.multi().zadd(this.keys.cometNodes, Date.now(), cometId);
    if (info) {
      const key = this.keys.cometInfo(cometId);
      multi.hset(key, 'ws_url', info.wsUrl, 'connections', info.connections).expire(key, info.ttlSeconds);
    }
    await multi.exec();
  }

  /** Live comets (heartbeat within `aliveMs`), least loaded first. */
  async liveComets(aliveMs: number, nowMs = Date.now()): Promise<{ cometId: string; wsUrl: string | null; connections: number }[]> {
    const ids = await cometsByHeartbeat(this.redis, this.keys, 'alive', aliveMs, nowMs);
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys.cometInfo(id), 'ws_url', 'connections');
    const infos = ids.length ? ((await pipeline.exec()) ?? []) : [];
    return ids
      .map((cometId, i) => {
        const [wsUrl, connections] = (infos[i]?.[1] ?? []) as (string | null)[];
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

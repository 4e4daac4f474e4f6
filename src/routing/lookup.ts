// The job's side of routing: who is in a room, or which connections a user has, grouped by
// the comet that holds them, so one gRPC call per comet node carries the message. Reads only
// the routing keys, so data written by hand with redis-cli routes the same way.
import type { ChainableCommander, Redis } from 'ioredis';
import { perSlot } from '../redis/batch.ts';
import type { RoutingKeys } from './keys.ts';

export interface Route {
  /** The comet's gRPC address, e.g. localhost:50051. */
  cometId: string;
  /** How many of the target connections this comet holds. */
  count: number;
  /** The connection ids; empty when the room's per-comet tally was enough (room lookups). */
  connIds: string[];
  userIds: string[];
}

export interface Routes {
  /** Connections found in the room or user sets. */
  total: number;
  byComet: Route[];
  /** Connection ids listed in a set whose info hash is gone: removed from the sets. */
  stale: string[];
}

/**
 * Comets by their last heartbeat in comet:nodes: `alive` heartbeated within `aliveMs`, `stale`
 * did not (the two never overlap and together cover every comet).
 */
export function cometsByHeartbeat(redis: Redis, keys: RoutingKeys, which: 'alive' | 'stale', aliveMs: number, nowMs = Date.now()): Promise<string[]> {
  const edge = nowMs - aliveMs;
  return which === 'alive'
    ? redis.zrangebyscore(keys.cometNodes, String(edge), '+inf')
    : redis.zrangebyscore(keys.cometNodes, '-inf', `(${edge}`);
}

export class RoutingLookup {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RoutingKeys,
  ) {}

  /**
   * A room's connections by comet. Comets keep room:comets:{room} (comet → count); when its
   * counts add up to SCARD of the room set, that is all job needs: O(comets), not O(members).
   * Otherwise (routing written by hand, or a tally not yet consistent) every member's
   * connection:info is read, as the seed docs describe.
   */
  comets(which: 'alive' | 'stale', aliveMs: number): Promise<string[]> {
    return cometsByHeartbeat(this.redis, this.keys, which, aliveMs);
  }

  async room(roomId: string, alongside?: (multi: ChainableCommander) => void): Promise<Routes> {
    // `alongside` adds the caller's own commands to the same transaction (one round trip); on a
    // cluster they must be this room's keys (room:history:{room} is), all in the room's slot.
    const multi = this.redis.multi().scard(this.keys.roomConnections(roomId)).hgetall(this.keys.roomComets(roomId));
    alongside?.(multi);
    const replies = (await multi.exec()) ?? [];
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    return fromTally(Number(replies[0]?.[1] ?? 0), replies[1]?.[1]) ?? this.roomByMembers(roomId);
  }

  /**
   * Many rooms at once (a job batch): SCARD + HGETALL of every room in one pipeline (one per
   * slot on a cluster, all in parallel), each room's step followed by the caller's own commands
   * for that room (`alongside`, e.g. its history writes: same slot, same round trip). Only rooms
   * whose tally does not add up cost a second round trip (every member read, as room() does).
   * Returns each room's routes and the replies of its `alongside` commands, in request order.
   */
  async rooms(requests: readonly { roomId: string; alongside?: (pipeline: ChainableCommander) => void }[]): Promise<{ routes: Routes; extra: unknown[] }[]> {
    const replies = await perSlot(
      this.redis,
      requests.map(({ roomId, alongside }) => ({
        key: this.keys.roomConnections(roomId),
        add: (p: ChainableCommander) => {
          p.scard(this.keys.roomConnections(roomId)).hgetall(this.keys.roomComets(roomId));
          alongside?.(p);
        },
      })),
    );
    return Promise.all(
      requests.map(async ({ roomId }, i) => {
        const [size, tally, ...extra] = replies[i] ?? [];
        return { routes: fromTally(Number(size ?? 0), tally) ?? (await this.roomByMembers(roomId)), extra };
      }),
    );
  }

  /** Every member's connection:info, as the seed docs describe; ids whose info is gone are dropped from the room. */
  private async roomByMembers(roomId: string): Promise<Routes> {
    const connIds = await this.redis.smembers(this.keys.roomConnections(roomId));
    const routes = await this.group(connIds);
    if (routes.stale.length > 0) await this.redis.srem(this.keys.roomConnections(roomId), ...routes.stale);
    return routes;
  }

  /**
   * A user's connections: user:connections:{user}, plus user:online:{user} for data written
   * the seed docs' way (which sets only that key).
   */
  async users(userIds: readonly string[]): Promise<Routes> {
    const replies = await perSlot(
      this.redis,
      userIds.map((user) => ({ key: this.keys.userConnections(user), add: (p) => p.smembers(this.keys.userConnections(user)).get(this.keys.userOnline(user)) })),
    );
    const connIds = new Set<string>();
    for (const value of replies.flat()) {
      if (Array.isArray(value)) value.forEach((c) => connIds.add(String(c)));
      else if (typeof value === 'string') connIds.add(value);
    }
    return this.group([...connIds]);
  }

  /**
   * Several users() lookups at once (a job batch of user pushes): every user's keys in one
   * pipelined read, every connection's info in a second one, then each list gets the routes of
   * its own users' connections, as users() would give it.
   */
  async usersMany(lists: readonly (readonly string[])[]): Promise<Routes[]> {
    const users = [...new Set(lists.flat())];
    const replies = await perSlot(
      this.redis,
      users.map((user) => ({ key: this.keys.userConnections(user), add: (p) => p.smembers(this.keys.userConnections(user)).get(this.keys.userOnline(user)) })),
    );
    const connsOf = new Map<string, string[]>();
    users.forEach((user, i) => {
      const conns = new Set<string>();
      for (const value of replies[i] ?? []) {
        if (Array.isArray(value)) value.forEach((c) => conns.add(String(c)));
        else if (typeof value === 'string') conns.add(value);
      }
      connsOf.set(user, [...conns]);
    });
    const all = await this.group([...new Set([...connsOf.values()].flat())]);
    const where = new Map<string, { cometId: string; userId: string }>();
    for (const route of all.byComet) route.connIds.forEach((conn, i) => where.set(conn, { cometId: route.cometId, userId: route.userIds[i]! }));
    return lists.map((list) => {
      const connIds = [...new Set(list.flatMap((user) => connsOf.get(user) ?? []))];
      const byComet = new Map<string, Route>();
      for (const conn of connIds) {
        const at = where.get(conn);
        if (!at) continue;
        let route = byComet.get(at.cometId);
        if (!route) byComet.set(at.cometId, (route = { cometId: at.cometId, count: 0, connIds: [], userIds: [] }));
        route.count++;
        route.connIds.push(conn);
        route.userIds.push(at.userId);
      }
      return { total: connIds.length, byComet: [...byComet.values()].sort((a, b) => a.cometId.localeCompare(b.cometId)), stale: all.stale.filter((c) => connIds.includes(c)) };
    });
  }

  private async group(connIds: readonly string[]): Promise<Routes> {
    const infos = await perSlot(this.redis, connIds.map((conn) => ({ key: this.keys.connectionInfo(conn), add: (p) => p.hmget(this.keys.connectionInfo(conn), 'comet_id', 'user_id') })));
    const byComet = new Map<string, Route>();
    const stale: string[] = [];
    connIds.forEach((conn, i) => {
      const [cometId, userId] = (infos[i]?.[0] ?? []) as (string | null)[];
      if (!cometId) {
        stale.push(conn);
        return;
      }
      let route = byComet.get(cometId);
      if (!route) byComet.set(cometId, (route = { cometId, count: 0, connIds: [], userIds: [] }));
      route.count++;
      route.connIds.push(conn);
      route.userIds.push(userId ?? '');
    });
    return { total: connIds.length, byComet: [...byComet.values()].sort((a, b) => a.cometId.localeCompare(b.cometId)), stale };
  }
}

/** The routes the comets' per-room tally gives, or null when it does not add up to the room's size. */
function fromTally(size: number, tally: unknown): Routes | null {
  const counts = Object.entries((tally ?? {}) as Record<string, string>)
    .map(([cometId, n]) => ({ cometId, count: Number(n) }))
    .filter((c) => c.count > 0);
  // An empty set has no members to read either.
  if (size <= 0) return { total: 0, byComet: [], stale: [] };
  if (counts.reduce((sum, c) => sum + c.count, 0) !== size) return null;
  return {
    total: size,
    byComet: counts.map((c) => ({ ...c, connIds: [], userIds: [] })).sort((a, b) => a.cometId.localeCompare(b.cometId)),
    stale: [],
  };
}

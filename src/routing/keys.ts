// Every routing key (DESIGN §3) is named here: comets write them, job reads them, and people
// write them by hand with redis-cli (the seed's setup script), so the names are exact.
//
// On a Redis Cluster (`tagged`) the id in each name is a hash tag, `room:connections:{video_123}`,
// so a room's keys share one slot (the room lookup and the history write stay one MULTI), as do
// a user's, a connection's and a comet's. Standalone names are unchanged (docs/scaling.md).

export interface RoutingKeys {
  readonly prefix: string;
  /** True on a Redis Cluster: ids are hash tags. */
  readonly tagged: boolean;
  readonly cometNodes: string;
  roomConnections(roomId: string): string;
  /** HASH comet_id → how many of the room's connections it holds (kept by comets; lets job skip per-member reads). */
  roomComets(roomId: string): string;
  connectionInfo(connId: string): string;
  userOnline(userId: string): string;
  userConnections(userId: string): string;
  cometConnections(cometId: string): string;
  /** HASH ws_url, connections: how clients reach a comet and how loaded it is (for /logic/token). */
  cometInfo(cometId: string): string;
  roomHistory(roomId: string): string;
  /**
   * STRING counter: the last per-room message seq handed out. Passed to the queue as a task's
   * sequence key; on a cluster the queue keeps it in its own slot (`{uvr_tasks}:room:seq:{room}`).
   */
  roomSeq(roomId: string): string;
  userOffline(userId: string): string;
}

export function routingKeys(prefix = '', tagged = false): RoutingKeys {
  const id = tagged ? (value: string) => `{${value}}` : (value: string) => value;
  return {
    prefix,
    tagged,
    cometNodes: `${prefix}comet:nodes`,
    roomConnections: (room) => `${prefix}room:connections:${id(room)}`,
    roomComets: (room) => `${prefix}room:comets:${id(room)}`,
    connectionInfo: (conn) => `${prefix}connection:info:${id(conn)}`,
    userOnline: (user) => `${prefix}user:online:${id(user)}`,
    userConnections: (user) => `${prefix}user:connections:${id(user)}`,
    cometConnections: (comet) => `${prefix}comet:connections:${id(comet)}`,
    cometInfo: (comet) => `${prefix}comet:info:${id(comet)}`,
    roomHistory: (room) => `${prefix}room:history:${id(room)}`,
    roomSeq: (room) => `${prefix}room:seq:${id(room)}`,
    userOffline: (user) => `${prefix}user:offline:${id(user)}`,
  };
}

// Every routing key (DESIGN §3) is named here: comets write them, job reads them, and people
// write them by hand with redis-cli (the seed's setup script), so the names are exact.

export interface RoutingKeys {
  readonly prefix: string;
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
  /** STRING counter: the last per-room message seq handed out. */
  roomSeq(roomId: string): string;
  userOffline(userId: string): string;
}

export function routingKeys(prefix = ''): RoutingKeys {
  return {
    prefix,
    cometNodes: `${prefix}comet:nodes`,
    roomConnections: (room) => `${prefix}room:connections:${room}`,
    roomComets: (room) => `${prefix}room:comets:${room}`,
    connectionInfo: (conn) => `${prefix}connection:info:${conn}`,
    userOnline: (user) => `${prefix}user:online:${user}`,
    userConnections: (user) => `${prefix}user:connections:${user}`,
    cometConnections: (comet) => `${prefix}comet:connections:${comet}`,
    cometInfo: (comet) => `${prefix}comet:info:${comet}`,
    roomHistory: (room) => `${prefix}room:history:${room}`,
    roomSeq: (room) => `${prefix}room:seq:${room}`,
    userOffline: (user) => `${prefix}user:offline:${user}`,
  };
}

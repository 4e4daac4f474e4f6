// The comet's metrics: WebSocket connections, rooms, frames and bytes sent, slow-consumer closes
// and dropped duplicates, read from the hub's plain counters at scrape time (nothing is done per
// frame but adding to a number), plus gRPC server calls and Redis latency.
import { Counter, Gauge, type Registry } from 'prom-client';
import { grpcCalls, redisLatency, type GrpcObserver, type LatencyObserver } from '../metrics/common.ts';
import type { Hub } from './hub.ts';

export interface CometMetrics {
  grpc: GrpcObserver;
  redis: LatencyObserver;
}

/** A counter that mirrors an ever-growing number kept elsewhere. */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read();
      if (now > seen) this.inc(now - seen);
      seen = now;
    },
  });
}

export function cometMetrics(registry: Registry, hub: Hub): CometMetrics {
  new Gauge({ name: 'pushline_ws_connections', help: 'Open WebSocket connections on this comet', registers: [registry], collect() { this.set(hub.conns.size); } });
  new Gauge({ name: 'pushline_ws_rooms', help: 'Rooms with at least one connection on this comet', registers: [registry], collect() { this.set(hub.rooms.size); } });
  mirroredCounter(registry, 'pushline_ws_frames_sent_total', 'WebSocket frames written (one per socket per frame)', () => hub.framesSent);
  mirroredCounter(registry, 'pushline_ws_bytes_sent_total', 'WebSocket frame bytes written, headers included', () => hub.bytesSent);
  mirroredCounter(registry, 'pushline_ws_slow_consumer_closes_total', 'Connections closed with 4008 because their send buffer passed COMET_MAX_BUFFER_BYTES', () => hub.slowConsumerCloses);
  mirroredCounter(registry, 'pushline_ws_duplicates_dropped_total', 'Messages not sent again because the connection/room already got that id', () => hub.duplicatesDropped);
  return { grpc: grpcCalls(registry, 'server'), redis: redisLatency(registry) };
}

// proto/comet.proto as both sides load it: the comet's server and job's clients. Part of the
// push contract (src/contract), so job never imports the comet's folder, and it does not load the
// server's reflection and decoding machinery.
import { fileURLToPath } from 'node:url';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';

export const COMET_PROTO = fileURLToPath(new URL('../../proto/comet.proto', import.meta.url));

/** goim's Proto: what one push carries to a comet. */
export interface ProtoMsg {
  ver?: number;
  op?: number;
  seq?: number;
  body?: Buffer;
  /** The message id (job sets it; goim callers do not): a comet need not parse the body for it. */
  id?: string;
}

export function loadCometDefinition(): PackageDefinition {
  return loadSync(COMET_PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
}

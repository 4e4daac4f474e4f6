// TLS for the job → comet gRPC hop (COMET_GRPC_TLS_CERT / _KEY / _CA), for comets on other
// hosts. The same three names serve both ends, so one set of files can be given to everyone:
// a comet serves with CERT+KEY and, when CA is set, requires client certificates signed by it
// (mutual TLS); job trusts CA (else the system roots) and presents CERT+KEY when set.
import * as grpc from '@grpc/grpc-js';
import { ConfigError, type GrpcTlsFiles } from '../config/load.ts';

export function cometServerCredentials(tls: GrpcTlsFiles | null): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  if (!tls.cert || !tls.key) {
    throw new ConfigError(['a comet serving gRPC over TLS needs COMET_GRPC_TLS_CERT and COMET_GRPC_TLS_KEY (COMET_GRPC_TLS_CA alone is for job)']);
  }
  return grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], Boolean(tls.ca));
}

export function cometChannelCredentials(tls: GrpcTlsFiles | null): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
}

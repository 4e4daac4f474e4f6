// Moved to the push contract (src/contract/comet-grpc-credentials.ts), which job and comet share;
// this re-export keeps older imports working.
export { cometChannelCredentials, cometServerCredentials } from '../contract/comet-grpc-credentials.ts';

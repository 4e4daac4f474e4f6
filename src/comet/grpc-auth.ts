// Moved to the push contract (src/contract/comet-grpc-auth.ts), which job and comet share; this
// re-export keeps older imports working.
export { authProblem, bearerToken, requireBearerToken } from '../contract/comet-grpc-auth.ts';

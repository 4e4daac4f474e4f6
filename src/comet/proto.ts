// Moved to the push contract (src/contract/comet-proto.ts), which job and comet share; this
// re-export keeps older imports working.
export { COMET_PROTO, loadCometDefinition, type ProtoMsg } from '../contract/comet-proto.ts';

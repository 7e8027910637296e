export * from './version.js';
export * from './close-codes.js';
export * from './messages.js';
export * from './codec.js';
export { checkMsgpack, type GuardLimits } from './msgpack-strict-decoder.js';

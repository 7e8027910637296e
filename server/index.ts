export { startServer, VERSION, type RunningServer } from './setup/start-server.js';
export type { TransportLibrary } from './transport/select-transport.js';
export { DEFAULTS, type ServerOptions, type TransportChoice } from './setup/options.js';
export { loadWhitelist } from './config/load-whitelist.js';
export { ConfigError, type ConfigProblem, type Whitelist, type MetricSpec, type LabelSpec } from './config/types.js';

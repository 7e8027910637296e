export { startServer, VERSION, type RunningServer } from './start-server.js';
export { DEFAULTS, type ServerOptions, type TransportChoice } from './options.js';
export { loadWhitelist } from './config/load-whitelist.js';
export { ConfigError, type ConfigProblem, type Whitelist, type MetricSpec, type LabelSpec } from './config/types.js';

#!/usr/bin/env node
// The server runs in this very process: no wrapper, no re-exec, so its PID is the server's.
import { main } from '../dist/server/setup/cli.js';

const code = await main(process.argv.slice(2));
// After a drain nothing is left to wait for, and the log is written synchronously (stdout-destination.ts).
setImmediate(() => process.exit(code));

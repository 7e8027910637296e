#!/usr/bin/env bash
# Runs inside the node24-ci image (test/deploy/uws-trixie.test.ts): unpacks the working tree it was
# given, installs it as CI does, says which uWS build loads, then runs the test files it is told to.
#   /in/src.tar   the working tree (git ls-files: tracked and untracked, not ignored)
#   /out/         preflight.json, report.json (vitest's JSON reporter)
#   "$@"          the test files
set -euo pipefail
mkdir -p /app
tar -xf /in/src.tar -C /app
cd /app
echo "[in-container] $(node --version), $(ldd --version | head -n1), npm $(npm --version)"
echo "[in-container] npm ci"
npm ci --no-audit --no-fund </dev/null >/out/npm-ci.log 2>&1 || { tail -n 40 /out/npm-ci.log; exit 1; }
node --input-type=module -e '
  import { loadNativeUws } from "./dist/server/transport/uws-loader.js";
  import { writeFileSync } from "node:fs";
  const r = loadNativeUws();
  const glibc = process.report.getReport().header.glibcVersionRuntime;
  const out = { node: process.version, glibc, ok: r.ok, packageName: r.packageName, version: r.version, binaryPath: r.binaryPath, failures: r.failures };
  writeFileSync("/out/preflight.json", JSON.stringify(out));
  console.log("[in-container] uWS: " + JSON.stringify(out));'
echo "[in-container] vitest run $*"
exec npx vitest run --reporter=default --reporter=json --outputFile.json=/out/report.json "$@"

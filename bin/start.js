// Runs the built CLI (dist/ is built by `npm ci` / `npm run build`); loaded by
// pdiffcopy.js once the Node version is known to be new enough.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('pdiffcopy: error: not built yet\npdiffcopy: hint: run `npm ci` or `npm run build` in the pdiffcopy directory\n');
  process.exit(1);
}
await import(cli.href);

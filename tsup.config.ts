import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
const define = { __PDC_VERSION__: JSON.stringify(version) };

export default defineConfig([
  {
    // The CLI, the hash worker and the connection thread: Node 20, ESM, dependencies stay in node_modules.
    entry: { cli: 'src/cli/main.ts', 'hash-worker': 'src/hash/worker.ts', 'ssh-worker': 'src/ssh/connection-worker.ts' },
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outDir: 'dist',
    clean: false,
    // No source maps: they would point at src/, which the package does not ship.
    sourcemap: false,
    define,
  },
  {
    // The agent: ONE self-contained CommonJS file (msgpackr and xxhash-wasm bundled in),
    // Node 12 syntax, built-ins only: it is sent over SSH and run with `node -e`.
    entry: { agent: 'agent/main.ts' },
    format: 'cjs',
    platform: 'node',
    target: 'node12',
    outDir: 'dist',
    outExtension: () => ({ js: '.cjs' }),
    noExternal: [/.*/],
    // msgpackr's plain JavaScript build: its Node entry would look for its optional native
    // addon (detect-libc, then a .node file searched for relative to the agent's working
    // directory): the agent must load no code from the remote disk, and the search cost
    // every agent's start.
    esbuildOptions(options) {
      options.alias = { msgpackr: './node_modules/msgpackr/index.js' };
    },
    clean: false,
    minify: true,
    sourcemap: false,
    define,
  },
]);

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedPath: string | undefined;
let cachedCode: Buffer | undefined;

/**
 * Path of the bundled agent (dist/agent.cjs). From the built CLI it sits beside
 * this module; from sources (tests) we walk up to the package root.
 */
export function agentBundlePath(): string {
  if (cachedPath) return cachedPath;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    for (const candidate of [join(dir, 'agent.cjs'), join(dir, 'dist', 'agent.cjs')]) {
      if (existsSync(candidate)) return (cachedPath = candidate);
    }
    dir = dirname(dir);
  }
  throw new Error('the bundled agent (dist/agent.cjs) was not found: run `npm run build`');
}

/** The agent's code, read once per process (it is sent to every remote channel). */
export function agentBundleCode(): Buffer {
  return (cachedCode ??= readFileSync(agentBundlePath()));
}

/** Path of another built file that sits beside the agent in dist/ (e.g. the hash worker). */
export function builtFilePath(name: string): string {
  return join(dirname(agentBundlePath()), name);
}

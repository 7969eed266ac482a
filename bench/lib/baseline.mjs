// A/B tools: the same pdiffcopy push/pull, run from another build (`--base-pdiffcopy CMD`,
// e.g. "node /tmp/pdc-base/bin/pdiffcopy.js"), so a change and the code before it are timed
// in one run, in rotating order, on the same files.
import { TOOLS, ALL_TOOLS, buildCommand } from './tools.mjs';

export const BASE_TOOLS = {
  'push-base': { label: 'pdiffcopy push (base)', pdc: true, direction: 'push', as: 'push' },
  'pull-base': { label: 'pdiffcopy pull (base)', pdc: true, direction: 'pull', as: 'pull' },
};

/** Make the base tools known to --tools (they are never in the default list). */
export function registerBaseTools() {
  for (const [name, tool] of Object.entries(BASE_TOOLS)) {
    if (TOOLS[name]) continue;
    TOOLS[name] = tool;
    ALL_TOOLS.push(name);
  }
}

/** buildCommand, with the base tools run by `baseCmd` (argv) instead of the build under test. */
export function buildCommandAB(tool, ctx, baseCmd) {
  const base = BASE_TOOLS[tool];
  if (!base) return buildCommand(tool, ctx);
  if (!baseCmd || baseCmd.length === 0) throw new Error(`${tool} needs --base-pdiffcopy CMD`);
  return buildCommand(base.as, { ...ctx, pdcCmd: baseCmd });
}

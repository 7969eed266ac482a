/**
 * Threat: the agent runs (maybe as root, with --sudo) in a directory of the remote host, its
 * working directory, that is not ours. A native addon planted there (build/Release/*.node,
 * prebuilds/<platform>/*.node, where optional native modules look for theirs) must never be
 * loaded. Rule pinned: the agent bundle loads no code from disk at all; it runs here exactly
 * as over SSH (the remote command, the agent's code on stdin), with the planted files in its
 * working directory, and its memory maps must not show them.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AGENT_MAGIC, buildRemoteCommand, encodeAgentPayload } from '../../src/protocol/bootstrap.js';
import { REPO } from '../support/cli-child.js';
import { tempDir } from '../support/files.js';

const PREBUILT = join(REPO, 'node_modules', '@msgpackr-extract', `msgpackr-extract-${process.platform}-${process.arch}`);
const addon = existsSync(PREBUILT) ? readdirSync(PREBUILT).find((f) => f.endsWith('.node')) : undefined;

let dir: string;
let cleanup: () => void;
beforeAll(() => ({ dir, cleanup } = tempDir('pdc-addon-')));
afterAll(() => cleanup?.());

it.skipIf(!addon)('the agent loads no native addon planted in its working directory', async () => {
  const planted = [join(dir, 'build', 'Release'), join(dir, 'prebuilds', `${process.platform}-${process.arch}`)];
  for (const d of planted) {
    mkdirSync(d, { recursive: true });
    copyFileSync(join(PREBUILT, addon!), join(d, addon!));
  }
  const child = spawn('sh', ['-c', buildRemoteCommand({})], { cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    child.stdin.write(encodeAgentPayload(readFileSync(join(REPO, 'dist', 'agent.cjs'))));
    const first = await new Promise<Buffer>((resolve, reject) => {
      child.stdout.once('data', resolve);
      child.once('exit', (code) => reject(new Error(`the agent exited (${code}) before it started`)));
    });
    expect(first.subarray(0, AGENT_MAGIC.length).equals(AGENT_MAGIC)).toBe(true);
    const maps = readFileSync(`/proc/${child.pid}/maps`, 'utf8');
    expect(maps).not.toContain(dir);
  } finally {
    child.stdin.end();
    child.kill();
  }
}, 30_000);

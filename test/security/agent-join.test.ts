/**
 * Threat: every agent but the first opens the --atomic temp file by name, in a directory
 * another user may write; a file swapped in at that name must not be written by them.
 * Rule pinned: a follower opens the name without following links and only if it is the
 * very file (dev/ino) the first agent created; the wire arguments are checked.
 */
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createDispatcher } from '../../agent/dispatch.js';
import { PdcError } from '../../src/errors/pdc-error.js';
import { FileService } from '../../src/fileops/file-service.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import type { OpenResult } from '../../src/protocol/messages.js';
import { RpcClient, serveRpc } from '../../src/protocol/rpc.js';
import { sha256File } from '../support/files.js';

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'pdc-join-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const opened: Array<{ files: FileService; client: RpcClient }> = [];
afterEach(async () => {
  for (const c of opened.splice(0)) {
    await c.files.close();
    c.client.dispose();
  }
});

/** A real dispatcher on a real FileService, over in-memory pipes, greeted. */
async function agent(): Promise<(op: string, args: unknown) => Promise<unknown>> {
  const up = new PassThrough();
  const down = new PassThrough();
  const files = new FileService();
  serveRpc(up, down, createDispatcher(files), () => undefined);
  const client = new RpcClient(down, up, 'agent');
  opened.push({ files, client });
  const call = (op: string, args: unknown) => client.call(op as 'stat', args as { path: string; role: 'source' });
  await call('hello', { protocol: PROTOCOL_VERSION, client: 'test' });
  return call;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof PdcError ? e.code : `not a PdcError: ${String(e)}`),
  );
}

it('a follower joins only the temp file the first agent made; a swapped name or a link is refused', async () => {
  const target = join(dir, 'target.bin');
  writeFileSync(target, Buffer.alloc(70_000, 7));
  const old = sha256File(target);
  const first = await agent();
  const r = (await first('open', { path: target, role: 'target', create: true, lock: true, atomic: true })) as OpenResult;
  const temp = r.temp!;
  expect(temp).toBe(join(dir, '.target.bin.pdiffcopy-tmp'));
  const join_ = { path: temp, dev: r.dev, ino: r.ino };
  const follower = async () => (await agent())('open', { path: target, role: 'target', atomic: true, join: join_ });

  expect(await codeOf(follower())).toBe('resolved');

  // The temp name now holds another file: refused, and that file is not written.
  renameSync(temp, `${temp}.moved`);
  writeFileSync(temp, 'someone else');
  expect(await codeOf(follower())).toBe('TARGET_CHANGED');

  // ... or a link to our own temp file: not followed.
  rmSync(temp);
  symlinkSync(`${temp}.moved`, temp);
  expect(await codeOf(follower())).toBe('TARGET_IO');

  // Malformed join arguments from the wire.
  const bad = await agent();
  for (const j of [{ path: temp }, { path: temp, dev: -1, ino: 1 }, { path: '', dev: 1, ino: 1 }, 'x']) {
    expect(await codeOf(bad('open', { path: target, role: 'target', atomic: true, join: j }))).toBe('PROTOCOL_ERROR');
  }
  expect(sha256File(target), 'the target is untouched').toBe(old);
});

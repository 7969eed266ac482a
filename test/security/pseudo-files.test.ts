/**
 * Threat: kernel pseudo files. A /proc file reports size 0 but has content, so it
 * was "copied" as 0 bytes and reported verified; a /sys file left an empty target;
 * as a target, writing one pokes the kernel. Rule: a file on a pseudo file system
 * (proc, sysfs, debugfs, cgroup, ...) is refused as source (exit 3) and as target
 * (exit 4), by file system type where Node has fs.statfs, by real path under /proc
 * or /sys on the Node 12 agent. Checked locally, over a real sshd, and on Node 12.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { pseudoFsByPath, pseudoFsByType } from '../../src/fileops/pseudo-fs.js';
import { AgentHost } from '../../src/hosts/agent-host.js';
import { createLocalTransport } from '../../src/transport/local.js';
import { pdcError } from '../ssh/helpers.js';
import { expectCleanError, jsonOf, killAllClis, REPO, runCli } from '../support/cli-child.js';
import { tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

/** A /proc file with content and st_size 0, and a read-only /sys attribute (size 4096, a few bytes of text). */
const PROC_FILE = '/proc/self/status';
const SYS_FILE = '/sys/kernel/uevent_seqnum';
/** Read-only as targets (0444): even if a check let them through, opening them for writing fails. */
const PROC_TARGET = '/proc/version';
const SYS_TARGET = SYS_FILE;

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let src: string;

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-pseudo-'));
  home = join(dir, 'home');
  mkdirSync(home);
  src = join(dir, 'source.bin');
  writeSeededFile(src, 1024 * 1024 + 9, 5);
});

afterEach(() => killAllClis());

afterAll(async () => {
  await sshd?.stop();
  cleanup?.();
});

describe('detection rules', () => {
  const types: Array<[number | bigint, string | undefined]> = [
    [0x9fa0, 'proc'],
    [0x62656572, 'sysfs'],
    [0x63677270, 'cgroup2'],
    [0x64626720, 'debugfs'],
    [0xcafe4a11, 'bpf'], // above 2^31: compared unsigned
    [-0x3501b5ef, 'bpf'], // the same bits as a signed 32-bit value
    [BigInt(0x9fa0), 'proc'],
    [0xef53, undefined], // ext4
    [0x01021994, undefined], // tmpfs
    [0x58465342, undefined], // xfs
  ];
  it.each(types)('statfs type %s -> %s', (type, name) => {
    expect(pseudoFsByType(type)).toBe(name);
  });

  const paths: Array<[string, string | undefined]> = [
    ['/proc', 'proc'],
    ['/proc/1/status', 'proc'],
    ['/sys/kernel/uevent_seqnum', 'sys'],
    ['/processes/x', undefined],
    ['/system/x', undefined],
    ['/srv/proc/x', undefined],
  ];
  it.each(paths)('real path %s -> %s', (path, name) => {
    expect(pseudoFsByPath(path)).toBe(name);
  });
});

type Case = [label: string, args: () => string[], exit: number, code: string, names: RegExp];
const remote = (p: string) => `${sshd.alias}:${p}`;
const ssh = () => ['-F', sshd.sshConfig];
const newTarget = (name: string) => join(dir, name);

const cases: Case[] = [
  ['local /proc source', () => [PROC_FILE, newTarget('l-proc.bin')], EXIT_CODES.source, 'SOURCE_NOT_REGULAR', /proc/],
  ['local /sys source', () => [SYS_FILE, newTarget('l-sys.bin')], EXIT_CODES.source, 'SOURCE_NOT_REGULAR', /sysfs/],
  ['local /proc target', () => [src, PROC_TARGET], EXIT_CODES.target, 'TARGET_NOT_REGULAR', /proc/],
  ['local /sys target', () => [src, SYS_TARGET], EXIT_CODES.target, 'TARGET_NOT_REGULAR', /sysfs/],
  ['local new file in /sys', () => [src, '/sys/kernel/pdc-no-such-file'], EXIT_CODES.target, 'TARGET_NOT_REGULAR', /sysfs/],
  ['push /proc source', () => [...ssh(), PROC_FILE, remote(newTarget('p-proc.bin'))], EXIT_CODES.source, 'SOURCE_NOT_REGULAR', /proc/],
  ['pull remote /proc source', () => [...ssh(), remote(PROC_FILE), newTarget('r-proc.bin')], EXIT_CODES.source, 'SOURCE_NOT_REGULAR', /proc/],
  ['pull remote /sys source', () => [...ssh(), remote(SYS_FILE), newTarget('r-sys.bin')], EXIT_CODES.source, 'SOURCE_NOT_REGULAR', /sysfs/],
  ['push to remote /proc target', () => [...ssh(), src, remote(PROC_TARGET)], EXIT_CODES.target, 'TARGET_NOT_REGULAR', /proc/],
  ['push to remote /sys target', () => [...ssh(), src, remote(SYS_TARGET)], EXIT_CODES.target, 'TARGET_NOT_REGULAR', /sysfs/],
];

describe.skipIf(!existsSync(SYS_FILE))('through the CLI', () => {
  it.each(cases)('%s: refused with the documented exit code, nothing created', async (_label, args, exit, code, names) => {
    const a = args();
    const r = await runCli(['--json', ...a], { home });
    expectCleanError(r, exit, names);
    expect(jsonOf(r).error.code).toBe(code);
    expect(jsonOf(r).error.message).toMatch(/pseudo file system/);
    const target = a[a.length - 1]!.replace(/^[^/]*:/, '');
    if (target.startsWith(dir)) expect(existsSync(target), `${target} created`).toBe(false);
  });
});

const node12 = join(REPO, '.cache/node12/bin/node');

describe.skipIf(!existsSync(node12) || !existsSync(SYS_FILE))('on a Node 12 agent (no fs.statfs: the /proc and /sys paths decide)', () => {
  async function agentOnNode12(): Promise<{ host: AgentHost; log: string[] }> {
    const log: string[] = [];
    const host = await AgentHost.start(createLocalTransport({ nodePath: node12 }), {
      agents: 1,
      machineId: 'node12',
      name: 'node12',
      displayPrefix: '',
      startTimeoutMs: 30_000,
      idleTimeoutMs: 30_000,
      log: (line) => log.push(line),
    });
    return { host, log };
  }

  it('refuses /proc and /sys sources and targets; a regular file still opens', async () => {
    const { host, log } = await agentOnNode12();
    try {
      expect(log.join('\n')).toMatch(/node v12\./);
      for (const path of [PROC_FILE, SYS_FILE]) {
        const e = await pdcError(host.open({ path, role: 'source' }));
        expect(e.code, e.message).toBe('SOURCE_NOT_REGULAR');
        expect(e.message).toMatch(/pseudo file system/);
      }
      for (const path of [PROC_TARGET, SYS_TARGET, '/sys/kernel/pdc-no-such-file']) {
        const e = await pdcError(host.open({ path, role: 'target', create: true, lock: true }));
        expect(e.code, e.message).toBe('TARGET_NOT_REGULAR');
      }
      const plain = join(dir, 'plain.txt');
      writeFileSync(plain, 'regular');
      expect(await host.open({ path: plain, role: 'source' })).toMatchObject({ size: 7 });
    } finally {
      await host.close();
    }
  });
});

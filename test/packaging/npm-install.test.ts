/**
 * The package as users get it: `npm pack`, then `npm install -g --prefix TMP` of the
 * tarball, as a user would run it. The installed `pdiffcopy` must run and copy a file,
 * `man` must find its page under TMP/share/man, the shell completions must be in the
 * package, and npm must not warn about anything the project's own package.json causes.
 *
 * The dependencies come from npm's cache when they are there (`--prefer-offline`: `npm ci`
 * fills it with their tarballs); npm may still ask the registry for their metadata.
 * The tarball is packed with --ignore-scripts from the dist/ that `npm test` built, so
 * packing does not rebuild dist/ under other test files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../support/cli-child.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string; version: string };

let dir: string;
let cleanup: () => void;
let prefix: string;
let tarball: string;
let packedFiles: string[];
let installStderr: string;
let packStderr: string;

/** npm's environment without the npm_* variables of the `npm test` that may be running us. */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, NO_UPDATE_NOTIFIER: '1' };
}

beforeAll(() => {
  ({ dir, cleanup } = tempDir('pdc-pack-'));
  prefix = join(dir, 'prefix');
  if (!existsSync(join(REPO, 'dist', 'agent.cjs'))) throw new Error('dist/ is not built: run npm run build first');
  const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO, env: npmEnv(), encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`npm pack failed (status ${pack.status}):\n${pack.stderr}`);
  packStderr = pack.stderr;
  const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(dir, info!.filename);
  packedFiles = info!.files.map((f) => f.path);
  const r = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], {
    cwd: dir,
    env: npmEnv(),
    encoding: 'utf8',
    timeout: 240_000,
  });
  installStderr = r.stderr;
  if (r.status !== 0) throw new Error(`npm install -g failed (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
}, 300_000);

afterAll(() => cleanup?.());

describe('npm pack', () => {
  it('packs the CLI, the built agent, the man page, the completions, README and LICENSE, and no sources or tests', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/pdiffcopy.js', 'dist/agent.cjs', 'man/pdiffcopy.1', 'completions/pdiffcopy.bash', 'completions/_pdiffcopy']) {
      expect(packedFiles, f).toContain(f);
    }
    expect(packedFiles.filter((f) => /^(src|test|agent|bench|scripts|node_modules|\.cache)\//.test(f))).toEqual([]);
  });

  it('npm pack warns about nothing in package.json', () => {
    expect(packStderr.split('\n').filter((l) => /^npm warn/i.test(l)), packStderr).toEqual([]);
  });
});

describe('npm install -g --prefix TMP of the tarball', () => {
  it('npm warns about nothing from our package.json (only, at most, the advisory on dependencies\' install scripts)', () => {
    const warnings = installStderr.split('\n').filter((l) => /^npm warn/i.test(l));
    // npm 11.16+ lists packages with install scripts (ssh2's optional native crypto and its
    // helpers); a `prepare` script of ours would be listed too, for a tarball install.
    expect(warnings.filter((l) => !/^npm warn install-scripts/i.test(l)), installStderr).toEqual([]);
    expect(warnings.filter((l) => l.includes(pkg.name)), installStderr).toEqual([]);
    expect(installStderr, installStderr).not.toMatch(/npm (error|ERR!)/i);
  });

  it('installs a working pdiffcopy command: --version, --help, and a copy that is byte-identical', () => {
    const bin = join(prefix, 'bin', 'pdiffcopy');
    expect(existsSync(bin)).toBe(true);
    expect(execFileSync(bin, ['--version'], { encoding: 'utf8' })).toContain(pkg.version);
    expect(execFileSync(bin, ['--help'], { encoding: 'utf8' })).toMatch(/--upload-node/);
    const src = join(dir, 'a.bin');
    const dst = join(dir, 'b.bin');
    writeSeededFile(src, 2 * 1024 * 1024 + 5, 3);
    writeSeededFile(dst, 1024 * 1024, 4);
    const r = spawnSync(bin, ['-q', src, dst], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir } });
    expect(r.status, r.stderr).toBe(0);
    expectSameBytes(dst, src);
  });

  it('installs the man page where man finds it (TMP/share/man/man1/pdiffcopy.1)', () => {
    const page = join(prefix, 'share', 'man', 'man1', 'pdiffcopy.1');
    expect(existsSync(page)).toBe(true);
    expect(readFileSync(page, 'utf8')).toMatch(/^\.TH PDIFFCOPY 1/m);
    const man = spawnSync('man', ['-M', join(prefix, 'share', 'man'), '-w', 'pdiffcopy'], { encoding: 'utf8' });
    if (man.error) return; // no man(1) on this host: the file check above is what remains
    expect(man.status, man.stderr).toBe(0);
    expect(realpathSync(man.stdout.trim())).toBe(realpathSync(page));
  });

  it('ships the completions in the installed package: bash registers them, zsh gets a #compdef file', () => {
    const completions = join(prefix, 'lib', 'node_modules', pkg.name, 'completions');
    const bash = spawnSync('bash', ['-c', `source ${JSON.stringify(join(completions, 'pdiffcopy.bash'))} && complete -p pdiffcopy`], { encoding: 'utf8' });
    expect(bash.status, bash.stderr).toBe(0);
    expect(bash.stdout).toMatch(/complete .*pdiffcopy/);
    expect(readFileSync(join(completions, '_pdiffcopy'), 'utf8')).toMatch(/^#compdef pdiffcopy/);
  });
});

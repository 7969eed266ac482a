// --bwlimit accuracy: push and pull at 100% change with --bwlimit RATE and --json-progress, and
// measure the rate over every 10-second window of the sending phase two ways: from the progress
// samples (about one a second: block data counted as each run is written, so a window's edges are
// off by the data in flight) and, in netns mode, on the link itself (the client namespace's
// transmitted bytes for a push, received for a pull, every 100 ms: wire.mjs). Reported as a
// share of the limit: the target is within 5%.
import { formatSize, parseSize, resetTarget, sha256File } from './files.mjs';
import { run, sh } from './proc.mjs';
import { buildCommand } from './tools.mjs';
import { phaseRate, sendingPhase, startWireSampler, windowRatesOf } from './wire.mjs';

const WINDOW_S = 10;

/** Share of the limit as a percentage; a span of window rates as `count: lowest-highest`. */
const pct = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');
const span = (rs) => (rs.length ? `${rs.length}: ${pct(Math.min(...rs))}-${pct(Math.max(...rs))}` : 'none');

function progressSamples(stderr) {
  const out = [];
  for (const line of String(stderr).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line);
      if (o.type === 'progress' || o.type === 'done') out.push({ elapsedS: o.elapsedS, bytes: o.bytesSent });
    } catch {
      /* not ours */
    }
  }
  return out;
}

/**
 * ctx: { env, src, srcSha, size, mask (100%), remoteTarget, localTarget, pdcCmd, pdcArgs, childEnv, cwd, seed, timeoutMs, log }
 * Returns a markdown section.
 */
export async function bwlimitSection(rateText, runs, ctx) {
  const rate = parseSize(rateText);
  const rows = [];
  for (let rep = 0; rep < runs; rep++) for (const tool of ['push', 'pull']) rows.push(await bwlimitRun(tool, rate, rateText, rep, runs, ctx));
  return [
    `### --bwlimit ${rateText} (${formatSize(rate)}/s), push and pull of ${formatSize(ctx.size)} at 100% change, ${runs} run(s) each`,
    '',
    '| run | wall time | data sent | progress: 10 s windows, lowest-highest | progress: whole sending phase | link: 10 s windows, lowest-highest | link: whole sending phase |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (x) =>
        `| ${x.tool} ${x.rep + 1}${x.ok ? '' : ' (FAILED)'} | ${x.seconds.toFixed(2)} s | ${formatSize(x.total)} | ${span(x.rates)} | ${pct(x.overall)} | ${span(x.wire.rates)} | ${pct(x.wire.overall)} |`,
    ),
    '',
    'Rates are a share of the limit. Progress: block data from --json-progress samples (about one a second), counted as runs are written.',
    "Link: bytes the client namespace transmitted (push) or received (pull), SSH and TCP/IP overhead included, sampled every 100 ms, between 1% and 99% of the run's total (netns mode only).",
    '',
  ].join('\n');
}

/** One run of `tool` (push or pull) with --bwlimit: its target checked, its rates from progress and from the link. */
async function bwlimitRun(tool, rate, rateText, rep, runs, ctx) {
  const cmd = buildCommand(tool, {
    src: ctx.src,
    remoteTarget: ctx.remoteTarget,
    localTarget: ctx.localTarget,
    sshConfig: ctx.env.sshConfig,
    pdcCmd: ctx.pdcCmd,
    pdcArgs: [...ctx.pdcArgs, '--bwlimit', rateText, '--json-progress'],
  });
  resetTarget(cmd.target, ctx.src, ctx.size, ctx.mask, ctx.seed);
  sh(['sync'], { allowFail: true, timeoutMs: 300_000 });
  const sampler = ctx.env.cliNs ? await startWireSampler(ctx.env.cliNs, tool === 'push' ? 'tx' : 'rx') : undefined;
  const r = await run(ctx.env.wrap(cmd.argv), { timeoutMs: ctx.timeoutMs, cwd: ctx.cwd, env: ctx.childEnv });
  const ok = r.code === 0 && sha256File(cmd.target) === ctx.srcSha;
  const shares = (phase) => ({ rates: windowRatesOf(phase, WINDOW_S).map((x) => x / rate), overall: phaseRate(phase) / rate });
  const wire = shares(sampler ? sendingPhase(sampler.stop()) : []);
  // Progress: the samples taken while block data was moving (neither before the first run nor after the last).
  const samples = progressSamples(r.stderr);
  const total = samples.at(-1)?.bytes ?? 0;
  const { rates, overall } = shares(samples.filter((s) => s.bytes > 0 && s.bytes < total));
  ctx.log(
    `  bwlimit ${rateText} ${tool} [${rep + 1}/${runs}]: ${ok ? 'ok' : 'FAILED'} ${r.seconds.toFixed(2)} s; progress windows ${span(rates)} of the limit` +
      (sampler ? `; on the link ${span(wire.rates)}, whole phase ${pct(wire.overall)}` : ''),
  );
  return { tool, rep, ok, seconds: r.seconds, total, rates, overall, wire };
}

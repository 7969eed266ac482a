import type { Readable } from 'node:stream';
import { PdcError } from '../errors/pdc-error.js';
import { AGENT_MAGIC } from '../protocol/bootstrap.js';
import { PROTOCOL_VERSION } from '../protocol/limits.js';
import type { HelloResult } from '../protocol/messages.js';
import { RpcClient } from '../protocol/rpc.js';
import type { AgentProcess } from '../transport/types.js';
import { VERSION } from '../version.js';
import { markStartup } from '../startup-marks.js';

export interface ConnectOptions {
  /** Where the agents run, for messages ("db1", "local"). */
  hostName: string;
  /** How long an agent may take to start and say hello. */
  startTimeoutMs: number;
  idleTimeoutMs: number;
  /** Turns an early exit status (node missing, too old, sudo) into a precise error. */
  explainExit?: (code: number | null, stderr: string) => PdcError | undefined;
  log?: (line: string) => void;
}

export interface ConnectedAgent {
  proc: AgentProcess;
  rpc: RpcClient;
  hello: HelloResult;
  stderrTail: () => string;
}

const STDERR_TAIL = 4096;

/**
 * Bring one agent up: wait for AGENT_MAGIC (anything before it is a dirty login
 * shell), then say hello. Errors explain themselves with the exit status and
 * stderr where the agent never got going.
 */
export async function connectAgent(proc: AgentProcess, opts: ConnectOptions): Promise<ConnectedAgent> {
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => {
    const text = c.toString('utf8');
    stderr = (stderr + text).slice(-STDERR_TAIL);
    if (opts.log) for (const line of text.split('\n')) if (line.trim()) opts.log(`${proc.label}: ${line}`);
  });
  const early = async (fallback: PdcError): Promise<PdcError> => {
    const status = await Promise.race([proc.exited, delay(1500).then(() => undefined)]);
    const explained = status ? opts.explainExit?.(status.code, stderr) : undefined;
    if (explained) return explained;
    const tail = stderr.trim().split('\n').slice(-3).join(' | ');
    return tail ? new PdcError(fallback.code, `${fallback.message}: ${tail}`, { hint: fallback.hint }) : fallback;
  };

  try {
    await awaitMagic(proc.stdout, opts.startTimeoutMs, opts.hostName);
    markStartup('agent');
  } catch (e) {
    // Explained before the kill: ending the stream first can cost the exit status that says why.
    const err = e instanceof PdcError && e.code === 'REMOTE_SHELL_NOT_CLEAN' ? e : await early(e as PdcError);
    proc.kill();
    throw err;
  }
  const rpc = new RpcClient(proc.stdout, proc.stdin, proc.label, {
    idleTimeoutMs: opts.idleTimeoutMs,
    explainFailure: (err) => {
      const tail = stderr.trim().split('\n').slice(-2).join(' | ');
      return tail && err.code === 'AGENT_DIED' ? new PdcError(err.code, `${err.message} (${tail})`, { hint: err.hint }) : err;
    },
  });
  try {
    const hello = await withTimeout(rpc.call('hello', { protocol: PROTOCOL_VERSION, client: VERSION }), opts.startTimeoutMs, () =>
      new PdcError('CONNECTION_TIMEOUT', `${opts.hostName}: the agent did not answer hello`),
    );
    markStartup('hello');
    return { proc, rpc, hello, stderrTail: () => stderr };
  } catch (e) {
    proc.kill();
    rpc.dispose();
    throw e;
  }
}

/** Resolve once AGENT_MAGIC has arrived, handing any bytes after it back to the stream. */
function awaitMagic(out: Readable, timeoutMs: number, hostName: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = Buffer.alloc(0);
    const done = (err?: PdcError) => {
      clearTimeout(timer);
      out.removeListener('data', onData);
      out.removeListener('end', onEnd);
      out.removeListener('close', onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onData = (c: Buffer) => {
      seen = Buffer.concat([seen, c]);
      const at = seen.indexOf(AGENT_MAGIC);
      if (at === 0) {
        out.pause();
        const rest = seen.subarray(AGENT_MAGIC.length);
        if (rest.length) out.unshift(rest);
        done();
      } else if (at > 0 || (seen[0] !== AGENT_MAGIC[0] && (seen.includes(10) || seen.length >= 200))) {
        // Something other than the agent spoke first: a login banner, an echo in .bashrc...
        const stray = seen.subarray(0, at > 0 ? at : Math.min(seen.length, 200)).toString('utf8').trim().slice(0, 200);
        done(
          new PdcError('REMOTE_SHELL_NOT_CLEAN', `${hostName}: the remote shell printed text before the agent started: ${JSON.stringify(stray)}`, {
            hint: 'make the remote shell startup files (~/.bashrc, ~/.profile) silent for non-interactive sessions',
          }),
        );
      }
    };
    const onEnd = () => done(new PdcError('AGENT_DIED', `${hostName}: the agent exited before it started`));
    const timer = setTimeout(
      () => done(new PdcError('CONNECTION_TIMEOUT', `${hostName}: the agent did not start within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
    out.on('data', onData);
    out.on('end', onEnd);
    out.on('close', onEnd);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function withTimeout<T>(p: Promise<T>, ms: number, err: () => PdcError): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(err()), ms)))]).finally(() => clearTimeout(t));
}

import type { Readable, Writable } from 'node:stream';
import { PdcError } from '../errors/pdc-error.js';

/** How long an agent's kill() waits after EOF on its stdin before it tears the stream down. */
export const AGENT_KILL_GRACE_MS = 2000;

/**
 * One running agent at the far end of a byte stream: a local child process or a
 * remote `node` behind an SSH exec channel. The stdout carries AGENT_MAGIC and then
 * frames; stderr carries the agent's logs only.
 */
export interface AgentProcess {
  /** For logs and errors, e.g. "local#0" or "db1 conn 2/ch 1". */
  readonly label: string;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles when the process (or channel) has gone: exit status or signal if known. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** Ends stdin (the agent exits on EOF) and forcibly tears the stream down after AGENT_KILL_GRACE_MS. */
  kill(): void;
  /** Stops an agent that was given no work at once (where the transport can), then as kill(). */
  abort?(): void;
}

/** A way to start agents near one file. */
export interface Transport {
  /** "local" or "user@host:port", for messages. */
  readonly description: string;
  /** Start `count` agents (spread across connections where there are several). */
  spawnAgents(count: number): Promise<AgentProcess[]>;
  /** Close everything this transport opened. Idempotent. */
  close(): Promise<void>;
}

/** A transport used after close() (`name`: which one, e.g. "SSH"). */
export function transportClosed(name: string): PdcError {
  return new PdcError('INTERNAL', `the ${name} transport is closed`);
}

/** What spawnAgents checks first: the transport is not closed and `count` is a whole number of agents. */
export function checkSpawn(name: string, closed: unknown, count: number): void {
  if (closed) throw transportClosed(name);
  if (!Number.isInteger(count) || count < 1) throw new PdcError('INTERNAL', `spawnAgents(${count})`);
}

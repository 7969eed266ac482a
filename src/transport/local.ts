import { spawn } from 'node:child_process';
import { agentBundlePath } from './agent-bundle.js';
import { AGENT_KILL_GRACE_MS, type AgentProcess, type Transport } from './types.js';
import { markStartup } from '../startup-marks.js';

export interface LocalTransportOptions {
  /** Node binary for the agents (tests use an old Node here). Default: this process's node. */
  nodePath?: string;
}

/**
 * Agents as local child processes over stdio: the same protocol and code path as
 * over SSH, for local-to-local copies and most tests.
 */
export function createLocalTransport(opts: LocalTransportOptions = {}): Transport {
  const children = new Set<AgentProcess>();
  return {
    description: 'local',
    async spawnAgents(count: number): Promise<AgentProcess[]> {
      const out: AgentProcess[] = [];
      for (let i = 0; i < count; i++) {
        const child = spawn(opts.nodePath ?? process.execPath, [agentBundlePath()], { stdio: ['pipe', 'pipe', 'pipe'] });
        const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
          child.once('exit', (code, signal) => resolve({ code, signal }));
          child.once('error', () => resolve({ code: 127, signal: null }));
        });
        child.stdin.on('error', () => undefined); // EPIPE when the agent died: reported via stdout's end
        const proc: AgentProcess = {
          label: `local#${i}`,
          stdin: child.stdin,
          stdout: child.stdout,
          stderr: child.stderr,
          exited,
          kill() {
            child.stdin.end();
            const t = setTimeout(() => child.kill('SIGKILL'), AGENT_KILL_GRACE_MS);
            t.unref();
            exited.then(() => clearTimeout(t));
          },
          abort() {
            child.kill('SIGKILL');
          },
        };
        children.add(proc);
        exited.then(() => children.delete(proc));
        out.push(proc);
      }
      markStartup('exec');
      return out;
    },
    async close(): Promise<void> {
      const all = [...children];
      for (const c of all) c.kill();
      await Promise.all(all.map((c) => c.exited));
    },
  };
}

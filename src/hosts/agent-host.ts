import { posix } from 'node:path';
import { pathTooLong } from '../errors/errno.js';
import { interrupted, PdcError } from '../errors/pdc-error.js';
import { BufferPool, type Chunk, chunkOf } from '../fileops/buffer-pool.js';
import { TRANSFER_RUN_BYTES } from '../protocol/limits.js';
import { unflattenRuns } from '../fileops/zero-runs.js';
import { bytesOfEach } from '../fileops/small-files.js';
import type { BlockRange } from '../hash/file-hash.js';
import { piecesBytes } from '../protocol/ops.js';
import { type PackRequest, pack, unpack } from '../protocol/compress.js';
import { joinPayload, type Payload } from '../protocol/framing.js';
import { PATH_MAX, windowsPerAgent } from '../protocol/limits.js';
import type {
  CommitResult,
  ListArgs,
  ListResult,
  MkdirArgs,
  OpName,
  OpenArgs,
  OpenResult,
  Ops,
  ReadFilesArgs,
  ReadFilesResult,
  Role,
  SetMetaArgs,
  SpaceResult,
  StatResult,
  RemoveArgs,
  RemoveResult,
  SymlinkArgs,
  TreeChangeResult,
  WriteFilesArgs,
  WriteFilesResult,
} from '../protocol/messages.js';
import type { AgentProcess, Transport } from '../transport/types.js';
import { type ConnectOptions, type ConnectedAgent, connectAgent } from './agent-connect.js';
import type { Bandwidth } from './bandwidth.js';
import type { FileHost } from './file-host.js';

export interface AgentHostOptions extends Omit<ConnectOptions, 'hostName'> {
  /** Agents to run (each its own process: on the remote, its own channel); with fitCores, at most. */
  agents: number;
  /** Run no more agents than the host has cores (at least MIN_FITTED_AGENTS): -c was not given. */
  fitCores?: boolean;
  /** The same machine as the CLI (local transport): enables the same-file check. */
  machineId: string;
  /** For messages: "local" for the local transport, "user@host" over SSH. */
  name: string;
  /** Prefix for paths in messages, e.g. "db1:" ("" for local). */
  displayPrefix: string;
  /** -z: pack block data at this brotli level in units of this many bytes, where both sides have the codec. */
  compress?: { level: number; unit: number };
  /** --bwlimit: the run's one bucket, shared by every channel. */
  bandwidth?: Bandwidth;
}

/**
 * With fitCores, agents beyond a host's cores only compete for them: each is a process that
 * hashes, reads and writes on one core. Two remain where there are fewer cores, so one agent
 * still answers while the other hashes. Measured on a 2-core pair sharing its cores (2 GiB,
 * alternating pairs): 2 agents against 4 took 10% off a push at 10% change and 12% off page
 * edits, 5% off a pull at 10%, and changed nothing at 0% and 100%.
 */
export const MIN_FITTED_AGENTS = 2;

/** Agents to run: `requested`, or with `hostCpus` known (fitCores), no more than its cores (at least MIN_FITTED_AGENTS). */
export function agentsFor(requested: number, hostCpus: number | undefined): number {
  if (!hostCpus || hostCpus < 1) return requested;
  return Math.min(requested, Math.max(MIN_FITTED_AGENTS, hostCpus));
}

/**
 * A file served by one or more agents. Requests go to the least busy agent, so
 * hashing runs on several processes (cores) of that host and block writes use
 * several channels at once. Every agent opens the same file.
 */
export class AgentHost implements FileHost {
  readonly name: string;
  readonly machineId: string;
  hashMethods: ReadonlySet<string> = new Set();
  /** Agents this host runs (once the first said hello: agentsFor). */
  private count: number;
  private agents: ConnectedAgent[] = [];
  private procs: AgentProcess[] = [];
  /** Settles with the open arguments once the file is open on the first agent. */
  private opened: Promise<OpenArgs | undefined> = Promise.resolve(undefined);
  private closed = false;
  private rr = 0;
  /** -z as negotiated with the first agent: what this side packs with, and what it asks agents to pack with. */
  private pack: PackRequest | undefined;
  /** -z: buffers that read answers are unpacked into, handed back when the chunk is released. */
  private readonly unpacked = new BufferPool(TRANSFER_RUN_BYTES);
  /** Buffers read answers are copied into, where agents' answers are copied out of the connection (RpcClient.copiesPayloads). */
  private readonly received = new BufferPool(TRANSFER_RUN_BYTES);
  /** Aborts waits (--bwlimit) when the host closes. */
  private readonly closing = new AbortController();

  private constructor(
    private readonly transport: Transport,
    private readonly opts: AgentHostOptions,
  ) {
    this.name = opts.name;
    this.machineId = opts.machineId;
    this.count = opts.agents;
  }

  get parallelism(): number {
    return this.count;
  }

  /**
   * Start the agents and return as soon as the FIRST one has said hello; the
   * others join the pool as they come up (each opening the file first). Over SSH
   * every channel pays for a login shell and a node start-up (0.3-1.5 s here, more
   * with a heavy ~/.bashrc): work starts after one of them, not after all. The first
   * is started alone, on the first connection that is up, so that nothing else (other
   * connections' key exchanges, other agents' node start-ups) competes with the run's
   * critical path; the others are started once it runs.
   */
  static async start(transport: Transport, opts: AgentHostOptions): Promise<AgentHost> {
    const host = new AgentHost(transport, opts);
    try {
      host.procs = await transport.spawnAgents(1);
      const first = await connectAgent(host.procs[0]!, { ...opts, hostName: opts.name });
      host.agents.push(first);
      host.hashMethods = new Set(first.hello.hashes);
      host.pack = negotiatePack(opts, first.hello.codecs ?? []);
      host.count = agentsFor(opts.agents, opts.fitCores ? first.hello.cpus : undefined);
      opts.log?.(`${opts.name}: first agent up (node ${first.hello.node}, agent ${first.hello.agent}, host ${first.hello.host}, ${first.hello.cpus ?? '?'} cores: ${host.count} agents)`);
      if (host.count > 1) void host.startOthers(host.count - 1);
      return host;
    } catch (e) {
      await host.close();
      throw e;
    }
  }

  /** Start `count` more agents; each joins the pool when it is up. One that fails to start costs parallelism, not the copy. */
  private async startOthers(count: number): Promise<void> {
    const notStarted = (e: unknown) => {
      if (!this.closed) this.opts.log?.(`${this.name}: an agent did not start: ${(e as Error).message}`);
    };
    let procs: AgentProcess[];
    try {
      procs = await this.transport.spawnAgents(count);
    } catch (e) {
      notStarted(e);
      return;
    }
    this.procs.push(...procs);
    if (this.closed) for (const p of procs) (p.abort ?? p.kill).call(p);
    for (const p of procs) connectAgent(p, { ...this.opts, hostName: this.opts.name }).then((agent) => this.adopt(agent), notStarted);
  }

  /**
   * Add a late agent to the pool once it has the file open like the others. A job
   * opens file after file on the same agents: if another file was opened while this
   * agent was opening, it opens that one too, so it never joins with a stale file.
   */
  private async adopt(agent: ConnectedAgent): Promise<void> {
    try {
      for (let seen: Promise<OpenArgs | undefined> | undefined; seen !== this.opened; ) {
        seen = this.opened;
        const openArgs = await seen;
        if (this.closed) throw new Error('closed');
        if (openArgs) await agent.rpc.call('open', openArgs);
      }
      if (this.closed) throw new Error('closed');
      this.agents.push(agent);
      this.opts.log?.(`${this.name}: ${this.agents.length} of ${this.count} agents up`);
    } catch {
      agent.rpc.dispose();
      agent.proc.kill();
    }
  }

  display(path: string): string {
    return this.opts.displayPrefix + path;
  }

  join(dir: string, name: string): string {
    return posix.join(dir, name);
  }

  async stat(path: string, role: Role): Promise<StatResult> {
    return this.call('stat', { path: this.checkPath(path, role), role });
  }

  async space(path: string): Promise<SpaceResult> {
    return this.call('space', { path: this.checkPath(path, 'target') });
  }

  async open(given: OpenArgs): Promise<OpenResult> {
    this.checkPath(given.path, given.role);
    const args = { ...given, windows: windowsPerAgent(this.count) };
    // The first agent takes the lock (and creates the file); the others then open it.
    // Agents still starting wait for this to settle (see adopt).
    const first = this.callOn(this.agents[0]!, 'open', args);
    const others = [...this.agents.slice(1)];
    this.opened = first.then(
      (r) => followerOpenArgs(args, r),
      () => undefined,
    );
    const r = await first;
    await Promise.all(others.map((a) => this.callOn(a, 'open', followerOpenArgs(args, r))));
    return r;
  }
  async hash(range: BlockRange, method: string): Promise<Buffer> {
    return joinPayload((await this.call('hash', { ...range, method })).p);
  }

  async read(offset: number, length: number, zeroUnit?: number, hashMethod?: string): Promise<Chunk> {
    const bw = this.opts.bandwidth;
    await bw?.take(length, this.closing.signal);
    const agent = this.pick();
    // Copied out of the connection: into a pooled buffer that goes back with the chunk.
    // Otherwise the stream's own chunks, as received: nothing to copy or release.
    const into = agent.rpc.copiesPayloads ? this.received.lend(length) : undefined;
    const args = { offset, length, ...(zeroUnit ? { zeroUnit } : {}), ...(this.pack ? { pack: this.pack } : {}), ...(hashMethod ? { hash: hashMethod } : {}) };
    let r: Ops['read']['result'];
    try {
      r = await this.callOn(agent, 'read', args, undefined, into?.buffer);
    } catch (e) {
      into?.giveBack();
      throw e;
    }
    const p = r.p ?? [];
    const wireBytes = p.reduce((n, b) => n + b.length, 0);
    bw?.giveBack(length - wireBytes);
    const zeros = unflattenRuns(r.zeros);
    const digests = r.digests ? { digests: Buffer.from(r.digests) } : {};
    if (!r.packed) return { ...chunkOf(p, into?.giveBack, zeros), wireBytes, ...digests };
    // -z: unpacked here, where it is written, into a pooled buffer.
    const buf = this.unpacked.acquire(r.packed.length);
    try {
      const data = await unpack(r.packed, p, this.name, buf);
      return { ...chunkOf([data], () => this.unpacked.release(buf), zeros), wireBytes, ...digests };
    } catch (e) {
      this.unpacked.release(buf);
      throw e;
    } finally {
      into?.giveBack();
    }
  }

  async hashPieces(ranges: readonly number[], grain: number, method: string, affinity?: number): Promise<Buffer> {
    return joinPayload((await this.callOn(this.pickFor(affinity), 'hashpieces', { ranges: [...ranges], grain, method })).p);
  }

  async readPieces(ranges: readonly number[], affinity?: number): Promise<Chunk> {
    await this.opts.bandwidth?.take(piecesBytes(ranges), this.closing.signal);
    return chunkOf((await this.callOn(this.pickFor(affinity), 'readpieces', { ranges: [...ranges] })).p ?? []);
  }

  async writePieces(ranges: readonly number[], buffers: readonly Buffer[]): Promise<void> {
    await this.opts.bandwidth?.take(piecesBytes(ranges), this.closing.signal);
    await this.call('writepieces', { ranges: [...ranges] }, buffers);
  }

  async zero(offset: number, length: number, punch?: boolean): Promise<boolean> {
    return !!(await this.call('zero', punch ? { offset, length, punch } : { offset, length })).punched;
  }

  /** -z: packed here, where the data was read (the agent unpacks it before writing). */
  async write(offset: number, buffers: readonly Buffer[]): Promise<number> {
    const packed = this.pack ? await pack(buffers, this.pack) : undefined;
    const payload = packed ? packed.payload : buffers;
    const wireBytes = payload.reduce((n, b) => n + b.length, 0);
    await this.opts.bandwidth?.take(wireBytes, this.closing.signal);
    await this.call('write', packed ? { offset, packed: packed.packed } : { offset }, payload);
    return wireBytes;
  }

  async truncate(size: number): Promise<void> {
    await this.callOn(this.agents[0]!, 'truncate', { size });
  }

  async fsync(): Promise<void> {
    // fsync flushes the inode, whichever descriptor asks; but each agent's writes must have landed first,
    // which they have: the engine awaits every write before it calls fsync.
    await this.callOn(this.agents[0]!, 'fsync', {});
  }

  async commit(size: number): Promise<CommitResult> {
    // The first agent created the temp file and owns the rename.
    return this.callOn(this.agents[0]!, 'commit', { size });
  }

  async digest(method: string, limit: number): Promise<Buffer> {
    const d = (await this.call('digest', { method, limit })).digest;
    return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  }

  async list(args: ListArgs): Promise<ListResult> {
    this.checkPath(args.path, args.role);
    return this.call('list', args);
  }

  // Tree changes go to the first agent: one at a time, in the order the job makes them.
  async mkdir(args: MkdirArgs): Promise<TreeChangeResult> {
    return this.callOn(this.agents[0]!, 'mkdir', { ...args, path: this.checkPath(args.path, 'target') });
  }

  async symlink(args: SymlinkArgs): Promise<TreeChangeResult> {
    return this.callOn(this.agents[0]!, 'symlink', { ...args, path: this.checkPath(args.path, 'target') });
  }

  async setmeta(args: SetMetaArgs): Promise<void> {
    await this.callOn(this.agents[0]!, 'setmeta', { ...args, path: this.checkPath(args.path, 'target') });
  }

  async remove(args: RemoveArgs): Promise<RemoveResult> {
    return this.callOn(this.agents[0]!, 'remove', { ...args, path: this.checkPath(args.path, 'target') });
  }

  // Batches need no open file: any agent takes one, so several batches run at once.
  async readFiles(args: ReadFilesArgs): Promise<{ files: ReadFilesResult['files']; data: Buffer[] }> {
    for (const f of args.files) this.checkPath(f.path, 'source');
    const asked = args.files.reduce((n, f) => n + f.size, 0);
    await this.opts.bandwidth?.take(asked, this.closing.signal);
    const r = await this.call('readfiles', args);
    const p = r.p === undefined ? [] : Buffer.isBuffer(r.p) ? [r.p] : [...r.p];
    this.opts.bandwidth?.giveBack(asked - p.reduce((n, b) => n + b.length, 0));
    return { files: r.files, data: bytesOfEach(p, r.files.map((f, i) => (f.error ? 0 : args.files[i]!.size))) };
  }

  async writeFiles(args: WriteFilesArgs, data: readonly Buffer[]): Promise<WriteFilesResult> {
    for (const f of args.files) this.checkPath(f.path, 'target');
    await this.opts.bandwidth?.take(data.reduce((n, b) => n + b.length, 0), this.closing.signal);
    return this.call('writefiles', args, data);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    await Promise.all(
      this.agents.map(async (a) => {
        if (!a.rpc.failed) await Promise.race([a.rpc.call('close', {}).catch(() => undefined), delay(1000)]);
        a.rpc.dispose();
        a.proc.kill();
      }),
    );
    // Agents still starting have nothing of the run's: they need not finish starting to stop.
    const working = new Set(this.agents.map((a) => a.proc));
    for (const p of this.procs) if (!working.has(p)) (p.abort ?? p.kill).call(p);
    await this.transport.close();
  }

  private call<K extends OpName>(op: K, args: Ops[K]['args'], payload?: Payload): Promise<Ops[K]['result']> {
    return this.callOn(this.pick(), op, args, payload);
  }

  private async callOn<K extends OpName>(
    agent: ConnectedAgent,
    op: K,
    args: Ops[K]['args'],
    payload?: Payload,
    into?: Buffer,
  ): Promise<Ops[K]['result']> {
    if (this.closed) throw interrupted(`${this.name}: closed`);
    try {
      return await agent.rpc.call(op, args, payload, into);
    } catch (e) {
      if (e instanceof PdcError && this.opts.displayPrefix && !e.message.startsWith(this.name)) {
        throw new PdcError(e.code, `${this.name}: ${e.message}`, { hint: e.hint, cause: e });
      }
      throw e;
    }
  }

  /**
   * A path longer than the wire carries is that side's error, said here where the
   * side is known: the agent would have to call it a bad request.
   */
  private checkPath(path: string, role: Role): string {
    if (Buffer.byteLength(path) >= PATH_MAX) throw pathTooLong(role, path, this.display(path));
    return path;
  }

  /** The live agent for `affinity` (the same while the pool does not change), else the least busy. */
  private pickFor(affinity: number | undefined): ConnectedAgent {
    const n = this.agents.length;
    if (affinity === undefined || n === 0) return this.pick();
    const a = this.agents[affinity % n]!;
    return a.rpc.failed ? this.pick() : a;
  }

  /** The least busy live agent; round-robin among equals. */
  private pick(): ConnectedAgent {
    let best: ConnectedAgent | undefined;
    const n = this.agents.length;
    for (let k = 0; k < n; k++) {
      const a = this.agents[(this.rr + k) % n]!;
      if (a.rpc.failed) continue;
      if (!best || a.rpc.inFlight < best.rpc.inFlight) best = a;
    }
    this.rr = (this.rr + 1) % Math.max(1, n);
    // All failed: any agent's call rejects with its failure.
    return best ?? this.agents[0]!;
  }
}

/** -z where asked for and the agents have the codec (this side always has: Node 20); else data travels raw, and -v says why. */
function negotiatePack(opts: AgentHostOptions, codecs: readonly string[]): PackRequest | undefined {
  if (!opts.compress) return undefined;
  if (codecs.indexOf('brotli') < 0) {
    opts.log?.(`${opts.name}: the agent has no brotli (needs Node 11.7 or later): sending uncompressed`);
    return undefined;
  }
  return { codec: 'brotli', level: opts.compress.level, unit: opts.compress.unit };
}

/** How every agent but the first opens the file: no lock, no creating, and with --atomic the very temp file the first one made. */
function followerOpenArgs(args: OpenArgs, first: OpenResult): OpenArgs {
  const join = first.temp === undefined ? undefined : { path: first.temp, dev: first.dev, ino: first.ino };
  const device = args.device === undefined ? {} : { device: 'checked' as const };
  return { ...args, lock: false, create: false, ...(join ? { join } : {}), ...device };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}


/**
 * Client authentication in OpenSSH's order, through ssh2's authHandler:
 *   none (learns the server's methods) -> ssh-agent keys -> identity files
 *   (-i and IdentityFile; the default ~/.ssh/id_ed25519, id_ecdsa, id_rsa only when none
 *   is configured) -> keyboard-interactive -> password.
 * Interactive methods and key passphrases need a terminal; without one they are skipped
 * and the failure lists what was tried, so a batch run fails fast instead of hanging.
 *
 * With IdentitiesOnly yes only the configured identities are offered, but, as OpenSSH does,
 * through the agent when it holds the same key (matched by public key blob: the `.pub`
 * beside the file, else the public half stored in clear in an OpenSSH-format key), so an
 * encrypted key loaded into ssh-agent needs no passphrase. Keys are asked for their
 * passphrase when their turn comes, not after the server accepted the public half as
 * OpenSSH does.
 * Security keys (sk-*), certificates and hostbased authentication are not supported by ssh2.
 *
 * Parsed keys are cached for the whole process: an encrypted key costs one passphrase
 * prompt and one bcrypt-pbkdf run (about 1.5 s), however many connections use it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
// Before ssh2, which takes its own reference to crypto.randomFillSync when it loads.
import './pooled-random.js';
import ssh2 from 'ssh2';
import type { AnyAuthMethod, AuthenticationType, AuthHandlerMiddleware, BaseAgent, ParsedKey } from 'ssh2';
import type { Prompter } from './prompt.js';

const { utils, OpenSSHAgent } = ssh2;

/** Default identities, tried only when no IdentityFile/-i is given (as OpenSSH does). */
export const DEFAULT_KEY_NAMES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export interface AuthOptions {
  user: string;
  /** "user@host" for prompts and messages. */
  display: string;
  /** Explicit identity files (expanded). Empty: the default keys in homeDir/.ssh. */
  identityFiles: string[];
  identitiesOnly: boolean;
  agentSocket?: string;
  homeDir: string;
  pubkey: boolean;
  password: boolean;
  keyboardInteractive: boolean;
  /** Undefined: no terminal (or batch mode), so nothing is ever asked. */
  prompter?: Prompter;
  /** Shared by the connections of one transport, so a password is typed once. */
  secrets?: SecretCache;
  /** Called around prompts, so the connect timeout does not run while the user types. */
  onPrompt?: (active: boolean) => void;
  log?: (msg: string) => void;
}

/** Answers worth reusing across the connections of one transport. */
export interface SecretCache {
  password?: Promise<string | undefined>;
}

type KeyLoad = { key: ParsedKey } | { skip: string };
const keyCache = new Map<string, Promise<KeyLoad>>();

function cacheId(file: string): string | undefined {
  try {
    const st = statSync(file);
    return `${file}\0${st.size}\0${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/** Read and parse a private key once per process, asking its passphrase if it has one. */
export function loadKey(file: string, prompter: Prompter | undefined, onPrompt?: (active: boolean) => void): Promise<KeyLoad> {
  const id = cacheId(file);
  if (id === undefined) return Promise.resolve({ skip: 'no such file' });
  let p = keyCache.get(id);
  if (!p) {
    p = parseKeyFile(file, prompter, onPrompt);
    keyCache.set(id, p);
  }
  return p;
}

async function parseKeyFile(file: string, prompter: Prompter | undefined, onPrompt?: (active: boolean) => void): Promise<KeyLoad> {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    return { skip: `unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  let parsed = utils.parseKey(data);
  if (parsed instanceof Error && /no passphrase given/i.test(parsed.message)) {
    if (!prompter) return { skip: 'encrypted, and no terminal to ask its passphrase' };
    onPrompt?.(true);
    try {
      // Three tries, like ssh.
      for (let i = 0; i < 3; i++) {
        const pass = await prompter.ask(`Enter passphrase for key '${file}': `, false);
        if (pass === '') return { skip: 'passphrase not given' };
        parsed = utils.parseKey(data, pass);
        if (!(parsed instanceof Error)) break;
      }
    } finally {
      onPrompt?.(false);
    }
    if (parsed instanceof Error) return { skip: 'wrong passphrase' };
  }
  if (parsed instanceof Error) return { skip: `not a usable private key (${parsed.message})` };
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) return { skip: 'not a private key' };
  return { key };
}

/** The public key blob of an identity file without decrypting it, if it can be found. */
export function publicBlobOf(file: string): Buffer | undefined {
  try {
    const pub = utils.parseKey(readFileSync(`${file}.pub`));
    const key = Array.isArray(pub) ? pub[0] : pub;
    if (key && !(key instanceof Error)) return key.getPublicSSH();
  } catch {
    /* no .pub: look inside the key file */
  }
  try {
    return openSshPublicBlob(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * PROTOCOL.key: "openssh-key-v1\0", cipher, kdf, kdf options, number of keys, then the
 * public keys unencrypted (each a length-prefixed blob).
 */
function openSshPublicBlob(pem: string): Buffer | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(pem);
  if (!m) return undefined;
  const buf = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (buf.toString('latin1', 0, magic.length) !== magic) return undefined;
  let off = magic.length;
  const str = (): Buffer => {
    const len = buf.readUInt32BE(off);
    const out = buf.subarray(off + 4, off + 4 + len);
    if (out.length !== len) throw new Error('truncated key');
    off += 4 + len;
    return out;
  };
  str(); // cipher name
  str(); // kdf name
  str(); // kdf options
  if (buf.readUInt32BE(off) < 1) return undefined;
  off += 4;
  return Buffer.from(str());
}

/** The public blob of a key as an agent lists it (ssh2's OpenSSH agent gives parsed keys). */
function agentKeyBlob(k: unknown): Buffer | undefined {
  const key = typeof k === 'object' && k !== null && 'pubKey' in k ? (k as { pubKey: unknown }).pubKey : k;
  return typeof key === 'object' && key !== null && 'getPublicSSH' in key ? (key as ParsedKey).getPublicSSH() : undefined;
}

/** Public blobs of the agent's keys; [] when it cannot be asked. */
function agentBlobs(sock: string): Promise<Buffer[]> {
  return new Promise((resolve) => {
    new OpenSSHAgent(sock).getIdentities((err, keys) =>
      resolve(err || !keys ? [] : keys.flatMap((k) => agentKeyBlob(k) ?? [])),
    );
  });
}

/** An agent that offers only one of its keys (IdentitiesOnly: the configured identity, nothing else). */
function oneKeyAgent(sock: string, blob: Buffer): BaseAgent {
  const agent = new OpenSSHAgent(sock);
  const getIdentities = agent.getIdentities.bind(agent);
  agent.getIdentities = (cb) =>
    getIdentities((err, keys) => cb(err ?? undefined, (keys ?? []).filter((k) => agentKeyBlob(k)?.equals(blob))));
  return agent;
}

/** The agent's copy of an identity file's key, as an auth method; undefined if the agent does not hold it. */
async function agentCopyOf(file: string, sock: string, user: string): Promise<AnyAuthMethod | undefined> {
  if (!existsSync(sock)) return undefined;
  const blob = publicBlobOf(file);
  if (!blob) return undefined;
  if (!(await agentBlobs(sock)).some((b) => b.equals(blob))) return undefined;
  return { type: 'agent', username: user, agent: oneKeyAgent(sock, blob) };
}

export interface AuthState {
  handler: AuthHandlerMiddleware;
  /** What was tried and how it went, for the AUTH_FAILED message. */
  attempts: string[];
  /** Methods the server said it accepts (after the first failure). */
  serverMethods(): AuthenticationType[] | undefined;
}

type Step = () => Promise<AnyAuthMethod | undefined>;
type AuthStep = { method: AuthenticationType; run: Step };
/** Asks for the password once per SecretCache; every later call gets the same answer. */
type PasswordAsker = (question: string) => Promise<string | undefined>;

export function createAuth(opts: AuthOptions): AuthState {
  const attempts: string[] = [];
  const askPassword = passwordAsker(opts);
  const steps: AuthStep[] = [
    { method: 'none', run: async () => ({ type: 'none', username: opts.user }) },
    ...(opts.pubkey && opts.agentSocket && !opts.identitiesOnly ? [agentStep(opts.agentSocket, opts.user, attempts)] : []),
    ...(opts.pubkey ? keyFileSteps(opts, attempts) : []),
    ...(opts.keyboardInteractive ? [keyboardInteractiveStep(opts, attempts, askPassword)] : []),
    ...(opts.password ? [passwordStep(opts, attempts, askPassword)] : []),
  ];
  return { attempts, ...authHandler(steps, attempts, opts) };
}

/** Every key the ssh-agent holds (without IdentitiesOnly). */
function agentStep(sock: string, user: string, attempts: string[]): AuthStep {
  return {
    method: 'publickey',
    run: async () => {
      if (!existsSync(sock)) {
        attempts.push(`ssh-agent (socket ${sock} does not exist)`);
        return undefined;
      }
      attempts.push(`ssh-agent keys (${sock})`);
      return { type: 'agent', username: user, agent: sock };
    },
  };
}

/** The identity files (-i and IdentityFile), else the default keys; one step each. */
function keyFileSteps(opts: AuthOptions, attempts: string[]): AuthStep[] {
  const explicit = opts.identityFiles.length > 0;
  const files = explicit ? opts.identityFiles : DEFAULT_KEY_NAMES.map((n) => join(opts.homeDir, '.ssh', n));
  return files.map((file) => ({
    method: 'publickey',
    run: async () => {
      // Without IdentitiesOnly the agent step has already offered every agent key.
      if (opts.identitiesOnly && opts.agentSocket) {
        const viaAgent = await agentCopyOf(file, opts.agentSocket, opts.user);
        if (viaAgent) {
          attempts.push(`key ${file} (through ssh-agent)`);
          return viaAgent;
        }
      }
      const r = await loadKey(file, opts.prompter, opts.onPrompt);
      if ('skip' in r) {
        // A missing default key is normal; a missing explicit one is worth saying.
        if (explicit || r.skip !== 'no such file') attempts.push(`key ${file} (${r.skip})`);
        return undefined;
      }
      attempts.push(`key ${file}`);
      return { type: 'publickey', username: opts.user, key: r.key };
    },
  }));
}

function passwordAsker(opts: AuthOptions): PasswordAsker {
  const secrets = opts.secrets ?? {};
  return (question) => {
    secrets.password ??= (async () => {
      opts.onPrompt?.(true);
      try {
        return await opts.prompter!.ask(question, false);
      } finally {
        opts.onPrompt?.(false);
      }
    })();
    return secrets.password;
  };
}

function keyboardInteractiveStep(opts: AuthOptions, attempts: string[], askPassword: PasswordAsker): AuthStep {
  return {
    method: 'keyboard-interactive',
    run: async () => {
      const prompter = opts.prompter;
      if (!prompter) {
        attempts.push('keyboard-interactive (skipped: no terminal)');
        return undefined;
      }
      attempts.push('keyboard-interactive');
      return {
        type: 'keyboard-interactive',
        username: opts.user,
        prompt: (_name, instructions, _lang, prompts, finish) => {
          void (async () => {
            opts.onPrompt?.(true);
            try {
              if (instructions) prompter.note(instructions);
              const answers: string[] = [];
              for (const p of prompts) {
                // A lone hidden "Password:" prompt is the password: reuse it across connections.
                if (prompts.length === 1 && !p.echo && /password/i.test(p.prompt)) {
                  answers.push((await askPassword(`(${opts.display}) ${p.prompt}`)) ?? '');
                } else {
                  answers.push(await prompter.ask(`(${opts.display}) ${p.prompt}`, p.echo ?? false));
                }
              }
              finish(answers);
            } catch {
              finish([]);
            } finally {
              opts.onPrompt?.(false);
            }
          })();
        },
      };
    },
  };
}

function passwordStep(opts: AuthOptions, attempts: string[], askPassword: PasswordAsker): AuthStep {
  return {
    method: 'password',
    run: async () => {
      if (!opts.prompter) {
        attempts.push('password (skipped: no terminal)');
        return undefined;
      }
      attempts.push('password');
      const pw = await askPassword(`${opts.display}'s password: `);
      if (pw === undefined) return undefined;
      return { type: 'password', username: opts.user, password: pw };
    },
  };
}

/** ssh2's authHandler: the steps in order, skipping those the server does not accept, each noting in `attempts` how it went. */
function authHandler(steps: AuthStep[], attempts: string[], opts: AuthOptions): Pick<AuthState, 'handler' | 'serverMethods'> {
  const log = opts.log ?? (() => {});
  let serverMethods: AuthenticationType[] | undefined;
  let next = 0;
  let passwordTried = false;
  let pending: number | undefined; // index in attempts of the method the server is judging
  const handler: AuthHandlerMiddleware = (methodsLeft, _partial, callback) => {
    if (methodsLeft) serverMethods = methodsLeft;
    // Being called again means the server refused the previous method.
    if (pending !== undefined) attempts[pending] += ' (refused)';
    pending = undefined;
    void (async () => {
      while (next < steps.length) {
        const step = steps[next++]!;
        // After 'none', follow the server's list: do not ask for a password it will not take.
        if (methodsLeft && !methodsLeft.includes(step.method)) continue;
        if (step.method === 'password') {
          // A cached wrong password must not be retried forever; one attempt per connection.
          if (passwordTried) continue;
          passwordTried = true;
        }
        try {
          const method = await step.run();
          if (method) {
            if (method.type !== 'none') pending = attempts.length - 1;
            log(`auth ${opts.display}: trying ${method.type === 'publickey' ? `key ${describeKey(method.key)}` : method.type}`);
            return callback(method);
          }
        } catch (err) {
          attempts.push(`${step.method} (${(err as Error).message})`);
        }
      }
      // No more methods: ssh2 turns `false` into "All configured authentication methods failed".
      callback(false as unknown as AuthenticationType);
    })();
  };
  return { handler, serverMethods: () => serverMethods };
}

function describeKey(key: ParsedKey | Buffer | string): string {
  return typeof key === 'object' && 'type' in key ? `${key.type} ${key.comment || ''}`.trim() : 'key';
}

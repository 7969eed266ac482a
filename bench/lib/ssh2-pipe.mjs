// The bare SSH library as a baseline: ssh2 alone (no pdiffcopy code), one connection, one exec
// channel, aes128-gcm, moving a whole file in place and making it durable, as the ssh pipe does
// with OpenSSH. Run as its own process by the bench (tools ssh2-pipe-fsync, ssh2-pull-pipe-fsync):
//   node ssh2-pipe.mjs SSH_CONFIG push LOCAL_SOURCE REMOTE_TARGET
//   node ssh2-pipe.mjs SSH_CONFIG pull REMOTE_SOURCE LOCAL_TARGET
// Push: the source in fresh 1 MiB buffers into `cat 1<> target && sync -d target`.
// TCP_NODELAY is set (ssh2 leaves Nagle's algorithm on): with Nagle, the tail of every packet
// waited for the server's acknowledgement and the push took 3.5-4.0 s instead of 2.4-2.6 s.
// Pull: `cat source` written in place into the local target as it arrives, then fdatasync.
// push-node-stream / push-node-onread: the push, into a Node reader on the remote instead of
// `cat` (the bare baseline of an agent's stdin): each chunk of stdin written in place, then
// fdatasync; stream reads through process.stdin (a fresh 64 KiB buffer per read), onread
// through a socket on descriptor 0 reading into one reused buffer (as the agent does).
// The host key is checked against the config's UserKnownHostsFile.
import fs from 'node:fs';
import ssh2 from 'ssh2';
import { sshConfigValues } from './env.mjs';

const [configFile, direction, from, to] = process.argv.slice(2);
const MiB = 1 << 20;
const CIPHER = 'aes128-gcm@openssh.com';

const shq = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

function knownKeys(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3 && !f[0].startsWith('#'))
    .map((f) => Buffer.from(f[2], 'base64'));
}

function connect(cfg) {
  const keys = knownKeys(cfg.UserKnownHostsFile);
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => {
      c.setNoDelay(true);
      resolve(c);
    }).on('error', reject);
    c.connect({
      host: cfg.HostName,
      port: Number(cfg.Port),
      username: cfg.User,
      privateKey: fs.readFileSync(cfg.IdentityFile),
      algorithms: { cipher: [CIPHER] },
      hostVerifier: (key) => keys.some((k) => k.equals(key)),
    });
  });
}

function exec(c, command) {
  return new Promise((resolve, reject) => c.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
}

/** Resolves with the channel's exit code once it closed. */
function closed(ch) {
  return new Promise((resolve) => {
    let code = null;
    ch.on('exit', (c) => (code = c));
    ch.on('close', () => resolve(code));
  });
}

/** Remote Node readers for push-node-*: argv[1] is the target, written in place. */
const NODE_READERS = {
  'push-node-stream':
    "const fs=require('fs'),fd=fs.openSync(process.argv[1],'r+');let pos=0;" +
    "process.stdin.on('data',(c)=>{fs.writeSync(fd,c,0,c.length,pos);pos+=c.length});" +
    "process.stdin.on('end',()=>fs.fdatasyncSync(fd));",
  'push-node-onread':
    "const fs=require('fs'),net=require('net'),fd=fs.openSync(process.argv[1],'r+'),b=Buffer.allocUnsafe(262144);let pos=0;" +
    "const s=new net.Socket({fd:0,readable:true,writable:false,onread:{buffer:b,callback:(n)=>{fs.writeSync(fd,b,0,n,pos);pos+=n}}});" +
    "s.on('end',()=>fs.fdatasyncSync(fd));s.resume();",
};

async function push(c, command = `cat 1<> ${shq(to)} && sync -d ${shq(to)}`) {
  const ch = await exec(c, command);
  ch.stderr.pipe(process.stderr);
  ch.resume();
  const done = closed(ch);
  const fd = fs.openSync(from, 'r');
  const size = fs.fstatSync(fd).size;
  for (let off = 0; off < size; off += MiB) {
    // A fresh buffer each time: ssh2 may still hold the last one.
    const buf = Buffer.allocUnsafe(Math.min(MiB, size - off));
    fs.readSync(fd, buf, 0, buf.length, off);
    if (!ch.write(buf)) await new Promise((r) => ch.once('drain', r));
  }
  fs.closeSync(fd);
  ch.end();
  return done;
}

async function pull(c) {
  const ch = await exec(c, `cat ${shq(from)}`);
  ch.stderr.pipe(process.stderr);
  const fd = fs.openSync(to, 'r+');
  let pos = 0;
  ch.on('data', (chunk) => {
    fs.writeSync(fd, chunk, 0, chunk.length, pos);
    pos += chunk.length;
  });
  const code = await closed(ch);
  fs.fdatasyncSync(fd);
  fs.closeSync(fd);
  return code;
}

if (!['push', 'pull', ...Object.keys(NODE_READERS)].includes(direction) || !to) {
  console.error(`usage: ssh2-pipe.mjs SSH_CONFIG push|pull|${Object.keys(NODE_READERS).join('|')} FROM TO`);
  process.exit(2);
}
const c = await connect(sshConfigValues(configFile));
const reader = NODE_READERS[direction];
const code = await (reader ? push(c, `node -e ${shq(reader)} ${shq(to)}`) : direction === 'push' ? push(c) : pull(c));
c.end();
if (code !== 0) {
  console.error(`ssh2-pipe: remote command exited with ${code}`);
  process.exit(1);
}

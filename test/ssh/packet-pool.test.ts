/**
 * Pooled SSH packets: a buffer is handed out again only after the socket write that carried
 * it has finished. Unit tests drive the pool through a stand-in cipher and socket shaped as
 * ssh2 uses them (allocPacket, encrypt in place, sock.write); the last tests move data through
 * agent channels over a real sshd with ciphers that write their packets in different ways.
 */
import type { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKET_BUFFER_BYTES, packetPoolStats, poolPackets } from '../../src/ssh/packet-pool.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { ECHO_AGENT, echoOnAgents, transportTo } from './helpers.js';

/** A socket that holds each write's callback until `finish()` and records what it was given, as written. */
class HeldSocket {
  readonly held: ((err?: Error | null) => void)[] = [];
  readonly received: Buffer[] = [];
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean {
    this.received.push(Buffer.from(chunk));
    if (cb) this.held.push(cb);
    return true;
  }
  finish(): void {
    for (const cb of this.held.splice(0)) cb(null);
  }
}

/** ssh2's shape: allocPacket takes Buffer.allocUnsafe at call time, encrypt fills in place and writes. */
class StandInCipher {
  constructor(private readonly sock: { write: (b: Buffer) => boolean }, private readonly fill: number) {}
  allocPacket(payloadLen: number): Buffer {
    return Buffer.allocUnsafe(payloadLen + 20);
  }
  send(payloadLen: number): Buffer {
    const p = this.allocPacket(payloadLen);
    p.fill(this.fill);
    this.sock.write(p);
    return p;
  }
}

function standIn(): { sock: HeldSocket; protocol: { _cipher: StandInCipher } } {
  const sock = new HeldSocket();
  const protocol = { _cipher: new StandInCipher(sock, 1) };
  poolPackets({ _sock: sock, _protocol: protocol } as unknown as Client);
  return { sock, protocol };
}

const flushed = () => new Promise((r) => setImmediate(r));

describe('the packet pool', () => {
  it('never hands out a buffer whose write has not finished, and reuses it once it has', async () => {
    const { sock, protocol } = standIn();
    const before = packetPoolStats();
    // Eight packets in flight: eight distinct buffers, and each reached the socket as filled.
    const inFlight = Array.from({ length: 8 }, (_, i) => {
      (protocol._cipher as unknown as { fill: number }).fill = i + 1;
      return protocol._cipher.send(1000);
    });
    expect(new Set(inFlight.map((p) => p.buffer)).size).toBe(8);
    expect(sock.received.map((b) => b[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(packetPoolStats().returned).toBe(before.returned);
    sock.finish();
    await flushed();
    expect(packetPoolStats().returned).toBe(before.returned + 8);
    // The next packets come from those returned buffers.
    const again = Array.from({ length: 8 }, () => protocol._cipher.send(1000));
    const reused = again.filter((p) => inFlight.some((q) => q.buffer === p.buffer)).length;
    expect(reused).toBe(8);
    expect(packetPoolStats().reused - before.reused).toBe(8);
    sock.finish();
    await flushed();
  });

  it('leaves Buffer.allocUnsafe alone outside allocPacket, also when allocPacket throws', () => {
    const original = Buffer.allocUnsafe;
    const { protocol } = standIn();
    protocol._cipher.send(10);
    expect(Buffer.allocUnsafe).toBe(original);
    const c = protocol._cipher as unknown as { allocPacket: (n: number) => Buffer };
    expect(() => c.allocPacket(-100)).toThrow(RangeError);
    expect(Buffer.allocUnsafe).toBe(original);
    // A buffer taken outside allocPacket is an ordinary one, never pooled.
    expect(Buffer.allocUnsafe(100).buffer.byteLength).not.toBe(PACKET_BUFFER_BYTES);
  });

  it('does not pool packets larger than a data packet; a write with its own callback is passed through as is', async () => {
    const { sock, protocol } = standIn();
    const big = protocol._cipher.send(PACKET_BUFFER_BYTES);
    expect(big.buffer.byteLength).toBeGreaterThanOrEqual(PACKET_BUFFER_BYTES + 20);
    let called = false;
    (sock as unknown as { write: (b: Buffer, cb: () => void) => boolean }).write(Buffer.from('x'), () => (called = true));
    sock.finish();
    await flushed();
    expect(called).toBe(true);
  });

  it('wraps the cipher a key exchange puts in place at the next write', async () => {
    const { sock, protocol } = standIn();
    protocol._cipher = new StandInCipher(sock, 9);
    protocol._cipher.send(10); // this write sees the new cipher and wraps it
    sock.finish();
    await flushed();
    const before = packetPoolStats();
    protocol._cipher.send(10);
    expect(packetPoolStats().reused + packetPoolStats().allocated).toBe(before.reused + before.allocated + 1);
    sock.finish();
    await flushed();
  });
});

describe('pooled packets over a real sshd', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd();
  }, 30_000);
  afterAll(() => sshd?.stop());

  for (const cipher of ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr']) {
    it(`${cipher}: 24 MiB through two echo agents come back byte for byte`, async () => {
      const t = transportTo(sshd, { connections: 1, agentCode: ECHO_AGENT, options: [`Ciphers=${cipher}`] });
      try {
        const before = packetPoolStats();
        for (const { sent, back } of await echoOnAgents(t, 2, 12 << 20)) expect(back.equals(sent)).toBe(true);
        const after = packetPoolStats();
        // Whatever the cipher does with the pooled buffer, the bytes are right; with GCM the
        // packet itself is written, so buffers come back and most packets reuse one (how many new
        // ones are needed depends on how many writes are in flight at once, not on the bytes sent).
        if (cipher.startsWith('aes128-gcm')) {
          expect(after.returned - before.returned).toBeGreaterThan(700);
          expect(after.reused - before.reused).toBeGreaterThan(after.allocated - before.allocated);
        }
      } finally {
        await t.close();
      }
    }, 60_000);
  }
});

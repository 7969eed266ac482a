/**
 * Questions to the user on the controlling terminal (/dev/tty), like ssh does: it works
 * even when stdin/stdout are pipes, and secrets are read without echo. Without a
 * terminal there is no prompter and callers fail fast instead of hanging.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { ReadStream, WriteStream } from 'node:tty';
import { interrupted } from '../errors/index.js';

export interface Prompter {
  /** Ask one question; `echo: false` for secrets. Questions are serialised. */
  ask(question: string, echo: boolean): Promise<string>;
  /** Show a line of text where the questions are asked (e.g. a server's instructions), in turn with them. */
  note(text: string): void;
  /** Abandon the question being asked and refuse later ones (INTERRUPTED); restores the terminal. */
  cancel(): void;
}

let queue: Promise<unknown> = Promise.resolve();

/** A prompter on /dev/tty, or undefined when this process has no controlling terminal. */
export function ttyPrompter(): Prompter | undefined {
  try {
    closeSync(openSync('/dev/tty', 'r+'));
  } catch {
    return undefined;
  }
  let cancelled = false;
  let abortActive: ((err: Error) => void) | undefined;
  const cancelledError = () => interrupted('cancelled while waiting at a prompt');
  return {
    ask(question, echo) {
      const next = queue.then(() => {
        if (cancelled) throw cancelledError();
        return askOnce(question, echo, (abort) => (abortActive = abort));
      });
      queue = next.catch(() => undefined);
      return next;
    },
    note(text) {
      queue = queue.then(() => {
        if (!cancelled) writeTty(`${text}\n`);
      }).catch(() => undefined);
    },
    cancel() {
      cancelled = true;
      abortActive?.(cancelledError());
    },
  };
}

/** Write to the terminal directly (no question is being asked: the terminal is in its normal mode). */
function writeTty(text: string): void {
  const fd = openSync('/dev/tty', 'w');
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

function askOnce(question: string, echo: boolean, onStart: (abort: (err: Error) => void) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const input = new ReadStream(openSync('/dev/tty', 'r'));
    const output = new WriteStream(openSync('/dev/tty', 'w'));
    // Raw mode: we see every key, so nothing is echoed unless we echo it.
    input.setRawMode(true);
    input.setEncoding('utf8');
    output.write(question);
    let answer = '';
    let finished = false;
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      input.setRawMode(false);
      input.removeListener('data', onData);
      input.destroy();
      output.end(err || !echo ? '\n' : '');
      if (err) reject(err);
      else resolve(answer);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          if (echo) output.write('\n');
          return finish();
        }
        if (ch === '\x03') return finish(interrupted('interrupted at a prompt'));
        if (ch === '\x04') return answer === '' ? finish(interrupted('end of input at a prompt')) : finish();
        if (ch === '\x7f' || ch === '\b') {
          if (answer.length) {
            answer = answer.slice(0, -1);
            if (echo) output.write('\b \b');
          }
          continue;
        }
        if (ch === '\x15') {
          // Ctrl-U: erase the line, as a terminal in cooked mode would.
          if (echo) output.write('\b \b'.repeat(answer.length));
          answer = '';
          continue;
        }
        answer += ch;
        if (echo) output.write(ch);
      }
    };
    input.on('data', onData);
    onStart(finish);
  });
}

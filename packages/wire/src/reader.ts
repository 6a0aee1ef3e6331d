import type { Stream } from '@libp2p/interface';
import { decodeVarint, MAX_VARINT_BYTES } from './varint.ts';

/** Thrown when the remote closed its writable end before the bytes we needed arrived. */
export class EndOfStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EndOfStreamError';
  }
}

export interface StreamReaderInit {
  /** Pause the libp2p stream (stop granting yamux window) once this many bytes sit unread. */
  highWaterMark: number;
  /** Called with every byte count we consume, so the host can count payload bytes live. */
  onBytes?: (n: number) => void;
}

/**
 * Pull-style reader over a libp2p v3 message stream. v3 streams push 'message' events and
 * yamux grants window on receipt, so we pause() the stream past a high-water mark and
 * resume() once the consumer catches up: that is what makes a slow reader slow the sender.
 */
export class StreamReader {
  readonly #stream: Stream;
  #highWaterMark: number;
  readonly #onBytes: ((n: number) => void) | undefined;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #buffered = 0;
  #remoteEnded = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #detached = false;

  constructor(stream: Stream, init: StreamReaderInit) {
    this.#stream = stream;
    this.#highWaterMark = init.highWaterMark;
    this.#onBytes = init.onBytes;
    stream.addEventListener('message', this.#onMessage);
    stream.addEventListener('remoteCloseWrite', this.#onRemoteCloseWrite);
    stream.addEventListener('close', this.#onClose);
  }

  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Change the pause threshold. A responder reads the header with a small one, so a requester
   * gets no yamux credit beyond the initial window until its body has been admitted.
   */
  setHighWaterMark(n: number): void {
    this.#highWaterMark = n;
    this.#maybePause();
  }

  #maybePause(): void {
    if (this.#buffered >= this.#highWaterMark && this.#stream.readStatus === 'readable') {
      try {
        this.#stream.pause();
      } catch {
        // closing streams refuse pause(); nothing left to throttle then
      }
    }
  }

  /** Stop listening; anything the remote sends afterwards stays in libp2p's capped read buffer. */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.#stream.removeEventListener('message', this.#onMessage);
    this.#stream.removeEventListener('remoteCloseWrite', this.#onRemoteCloseWrite);
    this.#stream.removeEventListener('close', this.#onClose);
    this.#chunks = [];
    this.#buffered = 0;
    this.#notify();
  }

  readonly #onMessage = (evt: { data: Uint8Array | Iterable<Uint8Array> }): void => {
    const data = evt.data;
    if (data instanceof Uint8Array) this.#push(data);
    else for (const chunk of data) this.#push(chunk);
    this.#maybePause();
    this.#notify();
  };

  readonly #onRemoteCloseWrite = (): void => {
    this.#remoteEnded = true;
    this.#notify();
  };

  readonly #onClose = (evt: Event): void => {
    const err = (evt as Event & { error?: Error }).error;
    if (err !== undefined && this.#error === undefined) this.#error = err;
    this.#remoteEnded = true;
    this.#notify();
  };

  #push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Wait until at least `n` bytes are buffered (n ≤ highWaterMark keeps back-pressure sound). */
  async #fill(n: number, signal: AbortSignal): Promise<void> {
    while (this.#buffered < n) {
      signal.throwIfAborted();
      if (this.#detached) throw new EndOfStreamError('reader detached');
      if (this.#stream.readStatus === 'paused') {
        // We need bytes the paused stream is holding back; resume() dispatches them synchronously.
        this.#resume();
        if (this.#buffered >= n) break;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#remoteEnded && this.#stream.readBufferLength === 0) {
        throw new EndOfStreamError(`stream ended with ${this.#buffered} of ${n} expected bytes`);
      }
      await this.#wait(signal);
    }
  }

  /** Resumes a paused stream; one already closed falls through to the caller's EOF/error checks. */
  #resume(): void {
    try {
      this.#stream.resume();
    } catch {
      // already closed
    }
  }

  #wait(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#wake = undefined;
        reject(signal.reason);
      };
      this.#wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Wait until the remote closes its writable end. Returns 0 on a clean end, or the number of
   * bytes that arrived instead (at least 1; the caller treats them as trailing garbage).
   */
  async expectEnd(signal: AbortSignal): Promise<number> {
    for (;;) {
      signal.throwIfAborted();
      if (this.#detached) throw new EndOfStreamError('reader detached');
      if (this.#stream.readStatus === 'paused') this.#resume();
      if (this.#buffered > 0) return this.#buffered;
      if (this.#error !== undefined) throw this.#error;
      if (this.#remoteEnded && this.#stream.readBufferLength === 0) return 0;
      await this.#wait(signal);
    }
  }

  /** Copy up to `max` buffered bytes into target[offset..]; returns how many were copied. */
  #drainInto(target: Uint8Array, offset: number, max: number): number {
    let copied = 0;
    while (copied < max && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const available = chunk.byteLength - this.#head;
      const take = Math.min(available, max - copied);
      target.set(chunk.subarray(this.#head, this.#head + take), offset + copied);
      copied += take;
      if (take === available) {
        this.#chunks.shift();
        this.#head = 0;
      } else {
        this.#head += take;
      }
    }
    this.#buffered -= copied;
    this.#onBytes?.(copied);
    if (this.#buffered < this.#highWaterMark / 2 && this.#stream.readStatus === 'paused') {
      try {
        this.#stream.resume();
      } catch {
        // closed underneath us; the next fill reports it
      }
    }
    return copied;
  }

  /** Read one varint length prefix. */
  async readVarint(signal: AbortSignal): Promise<number> {
    const scratch = new Uint8Array(MAX_VARINT_BYTES);
    for (let have = 1; have <= MAX_VARINT_BYTES; have++) {
      await this.#fill(have, signal);
      this.#peek(scratch, have);
      const decoded = decodeVarint(scratch.subarray(0, have));
      if (decoded !== undefined) {
        this.#drainInto(scratch, 0, decoded.length);
        return decoded.value;
      }
    }
    throw new RangeError('varint too long');
  }

  #peek(target: Uint8Array, n: number): void {
    let copied = 0;
    let head = this.#head;
    for (const chunk of this.#chunks) {
      const take = Math.min(chunk.byteLength - head, n - copied);
      target.set(chunk.subarray(head, head + take), copied);
      copied += take;
      head = 0;
      if (copied === n) return;
    }
  }

  /** Read exactly `n` bytes into a fresh array (callers cap n before calling). */
  async readExact(n: number, signal: AbortSignal): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    await this.readInto(out, 0, n, signal);
    return out;
  }

  /** Stream exactly `n` bytes into target[offset..] as they arrive, without buffering all of them. */
  async readInto(target: Uint8Array, offset: number, n: number, signal: AbortSignal): Promise<void> {
    let done = 0;
    while (done < n) {
      await this.#fill(1, signal);
      done += this.#drainInto(target, offset + done, n - done);
    }
  }
}

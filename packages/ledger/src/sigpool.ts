// Bulk signature checking for the auditor. libuv's pool (crypto.verify with a callback) costs ~20 µs of
// main-thread time per call here, more than parsing an entry, so a scan of a million entries packs
// each chunk into one transferable message for a small pool of worker threads instead.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { FedtwinError } from '@fedtwin/errors';
import { publicKeyRawOfPeerId, verifyEntrySignatureAsync, type LedgerEntry } from './entry.ts';
import type { SigJob } from './sig-worker.ts';

export interface SignaturePool {
  /** Resolves to the position (in `entries`) of the first bad signature, or -1. */
  check(entries: readonly LedgerEntry[]): Promise<number>;
  close(): Promise<void>;
}

/** Thread-pool fallback (also used for small jobs). */
async function checkAsync(entries: readonly LedgerEntry[]): Promise<number> {
  const oks = await Promise.all(entries.map((e) => verifyEntrySignatureAsync(e)));
  return oks.indexOf(false);
}

export function createSignaturePool(threads = Math.max(1, availableParallelism())): SignaturePool {
  let workers: Worker[];
  try {
    workers = Array.from({ length: threads }, () => new Worker(new URL('./sig-worker.ts', import.meta.url)));
  } catch {
    return { check: checkAsync, close: async () => undefined };
  }
  for (const w of workers) w.unref();
  const waiting = new Map<number, { resolve: (bad: number) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  let turn = 0;
  let failed: Error | undefined;
  for (const w of workers) {
    w.on('message', (m: { id: number; bad: number }) => {
      const p = waiting.get(m.id);
      waiting.delete(m.id);
      p?.resolve(m.bad);
    });
    w.on('error', (e) => {
      failed = new FedtwinError('LEDGER_IO', `signature worker failed: ${e.message}`, { cause: e });
      for (const p of waiting.values()) p.reject(failed);
      waiting.clear();
    });
  }
  return {
    check(entries) {
      if (failed) return Promise.reject(failed);
      if (entries.length < 64) return checkAsync(entries);
      const n = entries.length;
      let total = 0;
      for (const e of entries) total += e.signedMessage.byteLength;
      const data = new Uint8Array(total);
      const offsets = new Uint32Array(n + 1);
      const sigs = new Uint8Array(n * 64);
      const keyIdx = new Uint16Array(n);
      const keyPos = new Map<string, number>();
      const keyList: Uint8Array[] = [];
      let o = 0;
      entries.forEach((e, i) => {
        data.set(e.signedMessage, o);
        o += e.signedMessage.byteLength;
        offsets[i + 1] = o;
        sigs.set(e.signature, i * 64);
        let k = keyPos.get(e.author);
        if (k === undefined) {
          k = keyList.length;
          keyPos.set(e.author, k);
          keyList.push(publicKeyRawOfPeerId(e.author));
        }
        keyIdx[i] = k;
      });
      if (keyList.length > 65_535) return checkAsync(entries);
      const keys = new Uint8Array(keyList.length * 32);
      keyList.forEach((k, j) => keys.set(k, j * 32));
      const id = nextId++;
      const job: SigJob = { id, data, offsets, sigs, keys, keyIdx };
      const w = workers[turn++ % workers.length];
      return new Promise<number>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        w.postMessage(job, [data.buffer, offsets.buffer, sigs.buffer, keys.buffer, keyIdx.buffer]);
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

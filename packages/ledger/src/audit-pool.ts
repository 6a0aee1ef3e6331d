// A small pool of worker threads for the per-entry half of an audit (parse, leaf hash, signature).
// Jobs go round-robin and the caller consumes results in submission order, so the first failure it
// sees is the lowest bad index. Where workers cannot start, jobs run in-process (same function).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { FedtwinError } from '@fedtwin/errors';
import { auditChunk, type AuditChunkResult, type AuditJob } from './audit-chunk.ts';

export interface AuditPool {
  /** Parses, hashes and signature-checks the packed entries (`offsets` has n+1 positions into `data`). */
  run(data: Uint8Array, offsets: Uint32Array, origin?: string): Promise<AuditChunkResult>;
  close(): Promise<void>;
}

export function createAuditPool(threads = Math.max(1, availableParallelism())): AuditPool {
  let nextId = 0;
  let workers: Worker[];
  try {
    workers = Array.from({ length: threads }, () => new Worker(new URL('./audit-worker.ts', import.meta.url)));
  } catch {
    return { run: async (data, offsets, origin) => auditChunk({ id: nextId++, data, offsets, ...(origin === undefined ? {} : { origin }) }), close: async () => undefined };
  }
  for (const w of workers) w.unref();
  const waiting = new Map<number, { resolve: (r: AuditChunkResult) => void; reject: (e: Error) => void }>();
  let failed: Error | undefined;
  let turn = 0;
  for (const w of workers) {
    w.on('message', (r: AuditChunkResult) => {
      const p = waiting.get(r.id);
      waiting.delete(r.id);
      p?.resolve(r);
    });
    w.on('error', (e) => {
      failed = new FedtwinError('LEDGER_IO', `ledger audit worker failed: ${e.message}`, { cause: e });
      for (const p of waiting.values()) p.reject(failed);
      waiting.clear();
    });
  }
  return {
    run(data, offsets, origin) {
      if (failed) return Promise.reject(failed);
      const id = nextId++;
      const job: AuditJob = { id, data, offsets, ...(origin === undefined ? {} : { origin }) };
      const w = workers[turn++ % workers.length];
      return new Promise<AuditChunkResult>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        w.postMessage(job, [data.buffer as ArrayBuffer, offsets.buffer as ArrayBuffer]);
      });
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

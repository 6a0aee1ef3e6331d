import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where a running daemon publishes its status (in its dataDir, beside listening.json and result.json). */
export const STATUS_FILE = 'status.json';

/** What the file holds: the status and which process wrote it (so a reader can tell a live daemon from a stale file). */
export interface Published<S> {
  pid: number;
  startedAt: number;
  status: S;
}

interface WarnLogger {
  warn(obj: object, msg: string): void;
}

/**
 * Publishes a daemon's status to <dataDir>/status.json: Level lets one process open the daemon's state, so a
 * `fedtwin status` run beside it reads this file instead. Written atomically (tmp + rename: a reader never sees
 * half of it), at most every `minIntervalMs` after a change is signalled (`changed()`), and every `everyMs`
 * regardless (a round that fails at its deadline changes state without any request). A failed write is logged,
 * never fatal: the status is a view, the daemon's work goes on.
 */
export function publishStatus<S>(opts: { dataDir: string; build: () => Promise<S>; log: WarnLogger; minIntervalMs?: number; everyMs?: number }): { changed(): void; flush(): Promise<void>; stop(): Promise<void> } {
  const file = join(opts.dataDir, STATUS_FILE);
  const startedAt = Date.now();
  const minIntervalMs = opts.minIntervalMs ?? 500;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  let stopped = false;
  let warned = false;
  const write = (): Promise<void> => {
    writing = writing.then(async () => {
      try {
        const published: Published<S> = { pid: process.pid, startedAt, status: await opts.build() };
        await writeFile(`${file}.tmp`, `${JSON.stringify(published, null, 2)}\n`);
        await rename(`${file}.tmp`, file);
      } catch (err) {
        if (!warned) opts.log.warn({ event: 'status-write-failed', file, err: String(err) }, `could not write ${file}: ${(err as Error).message}`);
        warned = true;
      }
    });
    return writing;
  };
  const every = setInterval(() => { void write(); }, opts.everyMs ?? 5000);
  every.unref();
  return {
    changed() {
      if (stopped || timer) return;
      timer = setTimeout(() => { timer = undefined; void write(); }, minIntervalMs);
      timer.unref();
    },
    flush: () => write(),
    async stop() {
      stopped = true;
      clearInterval(every);
      if (timer) clearTimeout(timer);
      await write();
    },
  };
}

/** The published status, if the process that wrote it still runs (else the file is what a stopped daemon left). */
export async function readLiveStatus<S>(dataDir: string): Promise<Published<S> | undefined> {
  let p: Published<S>;
  try {
    p = JSON.parse(await readFile(join(dataDir, STATUS_FILE), 'utf8')) as Published<S>;
  } catch {
    return undefined;
  }
  return typeof p?.pid === 'number' && alive(p.pid) ? p : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

import { chmod, mkdir, stat } from 'node:fs/promises';

interface InfoLogger {
  info(obj: object, msg: string): void;
}

/**
 * For the daemons: everything they create is their user's alone. A node's state holds the private
 * adapter trained on its patient records and its HE secret key; the ledger and the aggregator's
 * state are the consortium's. Call first thing in a daemon (the mask is process-wide).
 */
export function restrictUmask(): void {
  if (process.platform !== 'win32') process.umask(0o077);
}

/**
 * Creates `dir` (and missing parents) mode 0700; an existing directory that group or others can
 * enter is tightened to 0700 with an info log line (event `private-dir`), not refused: older
 * releases created them 0755.
 */
export async function ensurePrivateDir(dir: string, log: InfoLogger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') return;
  const mode = (await stat(dir)).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  await chmod(dir, 0o700);
  const from = mode.toString(8);
  log.info({ event: 'private-dir', dir, from, to: '700' }, `${dir} was accessible by group or others (mode ${from}); set to 0700`);
}

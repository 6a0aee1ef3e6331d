import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FedtwinError } from '@fedtwin/errors';

/** The CLI entry the simulation starts daemons with (each a separate OS process). */
export const CLI_BIN = fileURLToPath(new URL('../../cli/src/bin.ts', import.meta.url));

export interface Daemon {
  name: string;
  child: ChildProcess;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>;
  /** Last lines of stderr, for error messages. */
  stderrTail(): string;
}

export type LogEvent = Record<string, unknown> & { event?: string; msg?: string };

/**
 * Starts `fedtwin <args>` on this Node (the project's Node 24) and streams its JSON log lines. `prefix` runs it
 * under another command that execs it (e.g. `ip netns exec NS`, so the daemon lives in a network namespace).
 */
export function startDaemon(name: string, args: string[], onEvent: (e: LogEvent) => void, logFile?: NodeJS.WritableStream, opts: { prefix?: readonly string[] } = {}): Daemon {
  const argv = [...(opts.prefix ?? []), process.execPath, CLI_BIN, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  const tail: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    logFile?.write(`${line}\n`);
    try {
      onEvent(JSON.parse(line) as LogEvent);
    } catch {
      // not a JSON log line; kept in the log file only
    }
  });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    logFile?.write(`[stderr] ${line}\n`);
    tail.push(line);
    if (tail.length > 30) tail.shift();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)));
    child.once('error', () => resolve(-1));
  });
  return { name, child, exited, stderrTail: () => tail.join('\n') };
}

/** Waits for a process to exit, SIGTERM then SIGKILL after the grace period. */
export async function stopDaemon(d: Daemon, graceMs = 5000): Promise<void> {
  if (d.child.exitCode !== null || d.child.signalCode !== null) return;
  d.child.kill('SIGTERM');
  const t = setTimeout(() => d.child.kill('SIGKILL'), graceMs);
  await d.exited;
  clearTimeout(t);
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new FedtwinError('SIM_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Resolves when every member has exited 0; rejects as soon as one daemon fails — a member exiting non-zero,
 * or the aggregator exiting non-zero while members run — so a sim never waits out its timeout on a dead
 * federation. The caller's finally stops the rest.
 */
export async function membersFinished(nodes: readonly Daemon[], agg: Daemon): Promise<void> {
  let stop = false;
  const failure = new Promise<never>((_, reject) => {
    for (const d of nodes) void d.exited.then((c) => { if (!stop && c !== 0) reject(daemonFailed(d, c)); });
    void agg.exited.then((c) => { if (!stop && c !== 0) reject(daemonFailed(agg, c)); });
  });
  failure.catch(() => undefined); // settled after the race is decided: not an unhandled rejection
  try {
    await Promise.race([Promise.all(nodes.map((d) => d.exited)), failure]);
  } finally {
    stop = true;
  }
  const codes = await Promise.all(nodes.map((d) => d.exited));
  const bad = codes.findIndex((c) => c !== 0);
  if (bad >= 0) throw daemonFailed(nodes[bad]!, codes[bad]);
}

/** A daemon's failure: which one, its exit code and the last lines it wrote to stderr. */
export function daemonFailed(d: Daemon, code?: number | null): FedtwinError {
  return new FedtwinError('SIM_DAEMON_FAILED', `${d.name} exited${code === undefined ? '' : ` with code ${code}`}: ${d.stderrTail().split('\n').slice(-6).join(' | ') || 'no error output'}`, {
    hint: 'see the log files under the output directory (aggregator/aggregator.log, nodes/<i>/node.log)',
  });
}

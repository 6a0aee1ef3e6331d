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

/** Starts `fedtwin <args>` on this Node (the project's Node 24) and streams its JSON log lines. */
export function startDaemon(name: string, args: string[], onEvent: (e: LogEvent) => void, logFile?: NodeJS.WritableStream): Daemon {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
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

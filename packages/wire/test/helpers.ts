import { createWireHost, generateIdentity } from '../src/index.ts';
import type { WireHost, WireHostInit, WireLogger } from '../src/index.ts';

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A logger that records lines so tests can assert what the host logged. */
export function memoryLogger(): WireLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
}

/** Tracks every host a test starts so afterEach can stop them all. */
export function hostPool() {
  const hosts: WireHost[] = [];
  return {
    async make(init: Partial<WireHostInit> = {}): Promise<WireHost> {
      const h = await createWireHost({ privateKey: init.privateKey ?? (await generateIdentity()), allow: () => true, ...init });
      hosts.push(h);
      return h;
    },
    async stopAll(): Promise<void> {
      // One at a time: two hosts closing a shared connection at once wait ~0.5 s on each other.
      for (const h of hosts.splice(0).reverse()) await h.stop();
    },
  };
}

/** Deterministic bytes so corruption anywhere in a large body shows up. */
export function patternBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

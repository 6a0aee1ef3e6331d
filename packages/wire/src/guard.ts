import { BlockList, isIP } from 'node:net';
import type { MultiaddrConnection } from '@libp2p/interface';
import { FedtwinError } from '@fedtwin/errors';
import { WIRE_CODES } from './codes.ts';

/**
 * Defences that run before a remote has proven who it is: the IP allowlist, the pending
 * (pre-handshake) connection pool and rate-limited logging of refusals.
 */

/** The remote IP of a TCP multiaddr connection, or undefined for other transports. */
export function remoteIp(maConn: Pick<MultiaddrConnection, 'remoteAddr'>): string | undefined {
  const c = maConn.remoteAddr.getComponents().find((x) => x.name === 'ip4' || x.name === 'ip6');
  if (c?.value === undefined) return undefined;
  return unmapV4(c.value);
}

/** `::ffff:10.1.2.3` → `10.1.2.3`, so IPv4 rules match dual-stack sockets. */
function unmapV4(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/** An IP allowlist of exact addresses and CIDR ranges (IPv4 and IPv6). */
export interface IpAllowlist {
  allows(ip: string): boolean;
}

export function parseIpAllowlist(entries: readonly string[]): IpAllowlist {
  if (!Array.isArray(entries)) throw new FedtwinError(WIRE_CODES.BAD_ARGUMENT, 'allowIps must be an array of IP addresses or CIDR ranges');
  const list = new BlockList();
  for (const entry of entries) {
    const bad = (): FedtwinError =>
      new FedtwinError(WIRE_CODES.BAD_ARGUMENT, `invalid allowIps entry ${JSON.stringify(entry)}`, {
        hint: 'Use an IP address (10.0.0.7, fd00::7) or a CIDR range (10.0.0.0/24, fd00::/64).',
      });
    if (typeof entry !== 'string') throw bad();
    const [addr, prefix, ...rest] = entry.trim().split('/');
    if (addr === undefined || rest.length > 0) throw bad();
    const ip = unmapV4(addr);
    const family = isIP(ip);
    if (family === 0) throw bad();
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) {
      list.addAddress(ip, type);
    } else {
      if (!/^\d{1,3}$/.test(prefix)) throw bad();
      const bits = Number(prefix);
      if (bits > (family === 4 ? 32 : 128)) throw bad();
      list.addSubnet(ip, bits, type);
    }
  }
  return {
    allows(ip: string): boolean {
      const v = unmapV4(ip);
      const family = isIP(v);
      if (family === 0) return false;
      return list.check(v, family === 4 ? 'ipv4' : 'ipv6');
    },
  };
}

/**
 * Inbound connections that have not finished the Noise handshake yet. libp2p refuses every new
 * inbound connection once its pending pool is full, so idle sockets that never send a byte could
 * lock members out until they time out. Here a new connection never waits for room: when its IP
 * already holds `perIp` pending connections (or the pool holds `total`), the OLDEST pending one
 * (of that IP, else of all) is dropped. A member's handshake takes milliseconds, so it is
 * always among the newest; an idle socket is always among the oldest.
 */
export class PendingInbound {
  readonly #total: number;
  readonly #perIp: number;
  /** Insertion order = age. */
  readonly #pending = new Map<MultiaddrConnection, string>();
  readonly #byIp = new Map<string, number>();

  constructor(total: number, perIp: number) {
    this.#total = total;
    this.#perIp = perIp;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Track `maConn`; returns the connections to drop to make room for it. */
  add(maConn: MultiaddrConnection, ip: string): MultiaddrConnection[] {
    const evicted: MultiaddrConnection[] = [];
    if ((this.#byIp.get(ip) ?? 0) >= this.#perIp) {
      for (const [c, cip] of this.#pending) {
        if (cip === ip) {
          evicted.push(c);
          this.remove(c);
          break;
        }
      }
    }
    if (this.#pending.size >= this.#total) {
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) {
        evicted.push(oldest);
        this.remove(oldest);
      }
    }
    this.#pending.set(maConn, ip);
    this.#byIp.set(ip, (this.#byIp.get(ip) ?? 0) + 1);
    return evicted;
  }

  remove(maConn: MultiaddrConnection): void {
    const ip = this.#pending.get(maConn);
    if (ip === undefined) return;
    this.#pending.delete(maConn);
    const n = (this.#byIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#byIp.delete(ip);
    else this.#byIp.set(ip, n);
  }
}

export interface RefusalLogger {
  warn(obj: Record<string, unknown>, msg?: string): void;
}

/**
 * Logs refused connections without letting a stranger fill the log: the first refusal of a key
 * (peer ID or IP) is logged in full, at most `maxImmediate` such lines per interval; everything
 * else is counted and reported as one summary line at most once per `intervalMs`. Memory is
 * bounded: at most `maxKeys` keys are counted per interval (the rest go to `others`) and at most
 * `maxKeys` keys are remembered as already reported.
 */
export class RefusalLog {
  readonly #log: RefusalLogger;
  readonly #intervalMs: number;
  readonly #maxImmediate: number;
  readonly #maxKeys: number;
  readonly #reported = new Set<string>();
  #counts = new Map<string, { count: number; reason: string }>();
  #others = 0;
  #suppressed = 0;
  #immediate = 0;
  #windowStart = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(log: RefusalLogger, intervalMs: number, opts: { maxImmediate?: number; maxKeys?: number } = {}) {
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#maxImmediate = opts.maxImmediate ?? 2;
    this.#maxKeys = opts.maxKeys ?? 1024;
  }

  /** Record one refusal of `key` for `reason`; `fields` and `msg` are logged if it is logged alone. */
  note(key: string, reason: string, fields: Record<string, unknown>, msg: string): void {
    if (this.#timer === undefined) {
      this.#windowStart = Date.now();
      this.#timer = setTimeout(() => this.flush(), this.#intervalMs);
      this.#timer.unref?.();
    }
    if (!this.#reported.has(key) && this.#immediate < this.#maxImmediate) {
      this.#immediate++;
      this.#reported.add(key);
      if (this.#reported.size > this.#maxKeys) this.#reported.delete(this.#reported.values().next().value!);
      this.#log.warn({ ...fields, reason }, `${msg} (further refusals are counted and summarised at most every ${Math.round(this.#intervalMs / 1000)} s)`);
      return;
    }
    this.#suppressed++;
    const c = this.#counts.get(key);
    if (c !== undefined) c.count++;
    else if (this.#counts.size < this.#maxKeys) this.#counts.set(key, { count: 1, reason });
    else this.#others++;
  }

  /** Log the counted refusals of the current interval (if any) and start a new interval. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#immediate = 0;
    if (this.#suppressed === 0) return;
    const top = [...this.#counts.entries()]
      .sort((a, b) => b[1].count - a[1].count)
      .slice(0, 10)
      .map(([key, v]) => ({ key, count: v.count, reason: v.reason }));
    const count = this.#suppressed;
    const keys = this.#counts.size;
    const others = this.#others;
    const seconds = Math.max(1, Math.round((Date.now() - this.#windowStart) / 1000));
    this.#counts = new Map();
    this.#others = 0;
    this.#suppressed = 0;
    this.#log.warn(
      { event: 'refused-summary', count, keys, top, ...(others > 0 ? { untracked: others } : {}) },
      `refused ${count} more connection(s)/stream(s) from ${keys}${others > 0 ? '+' : ''} peer(s)/IP(s) in the last ${seconds} s`,
    );
  }
}

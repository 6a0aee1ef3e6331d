import { isIP } from 'node:net';
import { FedtwinError } from '@fedtwin/errors';

/** `host:port` as written in a config (`127.0.0.1:9464`, `[::1]:9464`, `localhost:8080`, `0.0.0.0:9464`). */
export interface ListenAddress {
  host: string;
  port: number;
}

const LISTEN_RE = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

/** Parses `host:port`; port 0 asks the system for a free one. Throws HTTP_BAD_LISTEN naming `field`. */
export function parseListen(text: string, field = 'listen'): ListenAddress {
  const m = LISTEN_RE.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new FedtwinError('HTTP_BAD_LISTEN', `${field} must be host:port (e.g. 127.0.0.1:9464), got "${text}"`, { hint: 'an IPv6 address goes in brackets: [::1]:9464' });
  }
  return { host: m[1] ?? m[2]!, port };
}

/** Whether only this machine can reach the address: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(host) || /^::ffff:127\./i.test(host);
  return false;
}

/** The syntax the config schemas check (the same regex parseListen applies). */
export const LISTEN_PATTERN = LISTEN_RE;

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isIP } from 'node:net';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { FedtwinError } from '@fedtwin/errors';
import { LISTEN_PATTERN } from '@fedtwin/dashboard';
import { ModelConfigMessage, TableSchemaMessage, TrainingConfigMessage } from '@fedtwin/protocol';
import { configIssues } from '@fedtwin/consortium';

/** Config files are YAML or JSON; every field is documented in docs/configuration.md. */

const multiaddr = z.string().regex(/^\/(ip4|ip6|dns4|dns6)\/[^/]+\/tcp\/\d{1,5}(\/p2p\/[1-9A-HJ-NP-Za-km-z]+)?$/, 'must be a multiaddr like /ip4/127.0.0.1/tcp/9400');
const peerId = z.string().regex(/^(12D3Koo|Qm)[1-9A-HJ-NP-Za-km-z]{20,}$/, 'must be a libp2p peer ID (fedtwin keys generate prints it)');
const logLevel = z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info');
const httpListen = z.string().regex(LISTEN_PATTERN, 'must be host:port, e.g. 127.0.0.1:9464 ([::1]:9464 for IPv6)')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port must be 0 to 65535');
const bearerToken = z.string().min(16, 'must be at least 16 characters (e.g. the output of openssl rand -hex 24)').max(512).regex(/^\S+$/, 'must not contain spaces');
/**
 * Read-only HTTP views, both off unless configured. A listen address other than loopback needs a token (the
 * daemon refuses to start without one: HTTP_TOKEN_REQUIRED); docs/operations.md.
 */
const metricsConfig = z.object({ listen: httpListen, token: bearerToken.optional() }).strict();
const dashboardConfig = z.object({
  listen: httpListen, token: bearerToken.optional(),
  /** A sim's report.json whose fidelity and utility the dashboard shows once it exists. */
  report: z.string().min(1).optional(),
}).strict();

/** An inbound-connection allowlist entry (checked by the wire layer before any handshake; docs/wire.md). */
const ipOrCidr = z.string().max(64).refine((s) => {
  const [addr, prefix, ...rest] = s.split('/');
  const family = isIP(addr ?? '');
  return family !== 0 && rest.length === 0 && (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)));
}, 'must be an IP address (10.0.0.7, fd00::7) or a CIDR range (10.0.0.0/24, fd00::/64)');

export { PrivacyConfigSchema, type PrivacyConfig } from '@fedtwin/consortium';

export const AggregatorConfigSchema = z.object({
  /** The consortium manifest file (members, policies, model): what every member pinned. */
  consortium: z.string().min(1),
  dataDir: z.string().min(1),
  identity: z.string().min(1),
  listen: z.array(multiaddr).min(1).default(['/ip4/127.0.0.1/tcp/9400']),
  /**
   * Accept TCP connections only from these addresses or ranges (the hospitals', or the gateway that forwards
   * them); others are closed before the handshake. Default: any address (the peer-ID gate still applies).
   */
  allowIps: z.array(ipOrCidr).min(1).max(10_000).optional(),
  /** The audit log (default: <dataDir>/ledger). */
  ledgerDir: z.string().min(1).optional(),
  schema: z.union([z.string().min(1), TableSchemaMessage]),
  log: z.object({ level: logLevel }).strict().default({ level: 'info' }),
  metrics: metricsConfig.optional(),
  dashboard: dashboardConfig.optional(),
}).strict();
export type AggregatorConfig = z.infer<typeof AggregatorConfigSchema>;

export const NodeConfigSchema = z.object({
  dataDir: z.string().min(1),
  identity: z.string().min(1),
  /** A node only dials out (the aggregator never dials nodes), so by default it opens no listener. */
  listen: z.array(multiaddr).default([]),
  /** With `listen` (gossip): accept connections only from these addresses or ranges (the other members'). */
  allowIps: z.array(ipOrCidr).min(1).max(10_000).optional(),
  /** The consortium manifest file this member installed and pins (its own copy). */
  consortium: z.string().min(1),
  /** Where the aggregator listens; its peer ID comes from the manifest (`peerId` here, if given, must match it). */
  aggregator: z.object({ peerId: peerId.optional(), address: multiaddr }).strict(),
  data: z.object({ csv: z.string().min(1) }).strict(),
  /** This member's replica of the audit log (default: <dataDir>/ledger). */
  ledgerDir: z.string().min(1).optional(),
  /**
   * Other members to compare ledger views with after each sync (gossip): full multiaddrs ending in
   * /p2p/<their peer ID>, each a manifest member. Needs `listen` so they can reach this member too.
   */
  witnesses: z.array(multiaddr.refine((a) => /\/p2p\/[1-9A-HJ-NP-Za-km-z]+$/.test(a), 'must end in /p2p/<peer ID>')).max(10_000).default([]),
  synthetic: z.object({
    rows: z.number().int().min(1).max(10_000_000),
    out: z.string().min(1),
    classProbs: z.record(z.string(), z.number().min(0)).optional(),
  }).strict().optional(),
  exitWhenDone: z.boolean().default(false),
  /** Give up after the aggregator has been unreachable this long, at start (it may start after this node) or mid-run. */
  unreachableGiveUpSeconds: z.number().positive().max(7 * 24 * 3600).optional(),
  /** Simulations only: seed DP noise and HE rounding for reproducible runs (not private). */
  seededNoise: z.boolean().default(false),
  /** HE worker threads (default: 2, or 1 on a one-core machine); a simulation that runs many members on one machine uses 1. */
  heThreads: z.number().int().min(1).max(16).optional(),
  seed: z.number().int().min(0).default(1),
  result: z.string().optional(),
  /**
   * This site's own privacy: a stricter budget (epsilon, delta; default the consortium's), the weakest policy
   * it joins under (`require`), or `mode: off` — the only way it joins a consortium whose manifest has no DP.
   */
  privacy: z.object({
    epsilon: z.number().positive().optional(),
    delta: z.number().gt(0).lt(1).optional(),
    mode: z.literal('off').optional(),
    require: z.object({
      mode: z.enum(['record', 'site', 'both']).optional(),
      maxEpsilon: z.number().positive().optional(),
      maxDelta: z.number().gt(0).lt(1).optional(),
    }).strict().optional(),
  }).strict().optional(),
  log: z.object({ level: logLevel }).strict().default({ level: 'info' }),
  metrics: metricsConfig.optional(),
  dashboard: dashboardConfig.omit({ report: true }).strict().optional(),
}).strict();
export type NodeConfig = z.infer<typeof NodeConfigSchema>;

/** Reads, parses and validates a config file; relative paths in it resolve against its folder. */
export async function loadConfigFile<S extends z.ZodType>(path: string, schema: S): Promise<{ config: z.infer<S>; baseDir: string }> {
  return { config: validateConfig(await readConfigFile(path), schema, path), baseDir: dirname(resolve(path)) };
}

/**
 * Either daemon's config, told apart by what only a node's has (`data`, the `aggregator` it dials): for commands
 * that work on both (`fedtwin status`).
 */
export async function loadDaemonConfig(path: string): Promise<{ role: 'aggregator'; config: AggregatorConfig; baseDir: string } | { role: 'node'; config: NodeConfig; baseDir: string }> {
  const raw = await readConfigFile(path);
  const baseDir = dirname(resolve(path));
  const isNode = typeof raw === 'object' && raw !== null && ('data' in raw || 'aggregator' in raw);
  return isNode
    ? { role: 'node', config: validateConfig(raw, NodeConfigSchema, path), baseDir }
    : { role: 'aggregator', config: validateConfig(raw, AggregatorConfigSchema, path), baseDir };
}

async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new FedtwinError('CONFIG_NOT_FOUND', `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'pass --config with the path of a YAML or JSON config file' });
  }
  if (text.length > 4 * 1024 * 1024) throw new FedtwinError('CONFIG_INVALID', `config file ${path} is larger than 4 MiB`);
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new FedtwinError('CONFIG_PARSE', `config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`, { hint: 'fix the syntax at the position given' });
  }
  return raw;
}

export function validateConfig<S extends z.ZodType>(raw: unknown, schema: S, source: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = configIssues(schema, parsed.error.issues);
  const first = issues[0]!;
  const all = issues.map((i) => `${i.field}: ${i.message}`);
  throw new FedtwinError('CONFIG_INVALID', `${source}: field "${first.field}": ${first.message}`, {
    hint: `fix the field named above (see docs/configuration.md)${all.length > 1 ? `; other problems: ${all.slice(1).join('; ')}` : ''}`,
    details: { issues: all, field: first.field },
  });
}

export const resolveFrom = (baseDir: string, p: string): string => resolve(baseDir, p);

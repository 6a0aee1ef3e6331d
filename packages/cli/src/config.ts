import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { FedtwinError } from '@fedtwin/errors';
import { ModelConfigMessage, TableSchemaMessage, TrainingConfigMessage } from '@fedtwin/protocol';

/** Config files are YAML or JSON; every field is documented in docs/configuration.md. */

const multiaddr = z.string().regex(/^\/(ip4|ip6|dns4|dns6)\/[^/]+\/tcp\/\d{1,5}(\/p2p\/[1-9A-HJ-NP-Za-km-z]+)?$/, 'must be a multiaddr like /ip4/127.0.0.1/tcp/9400');
const peerId = z.string().regex(/^(12D3Koo|Qm)[1-9A-HJ-NP-Za-km-z]{20,}$/, 'must be a libp2p peer ID (fedtwin keys generate prints it)');
const logLevel = z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info');

const mechanism = {
  clip: z.number().positive().optional(),
  noiseMultiplier: z.number().positive().optional(),
  targetEpsilon: z.number().positive().optional(),
};
export const PrivacyConfigSchema = z.object({
  mode: z.enum(['off', 'record', 'site', 'both']).default('off'),
  epsilon: z.number().positive().default(8),
  delta: z.number().gt(0).lt(1).default(1e-5),
  ...mechanism,
  site: z.object(mechanism).strict().optional(),
}).strict();
export type PrivacyConfig = z.infer<typeof PrivacyConfigSchema>;

export const AggregatorConfigSchema = z.object({
  consortium: z.string().min(1).max(200).default('fedtwin'),
  dataDir: z.string().min(1),
  identity: z.string().min(1),
  listen: z.array(multiaddr).min(1).default(['/ip4/127.0.0.1/tcp/9400']),
  members: z.array(peerId).min(1),
  /**
   * Largest FedAvg weight (record count) a member may declare: one bound for all, or per member peer ID
   * (members not named get 1,000,000). Bounds how far one member can dilute the others.
   */
  maxWeight: z.union([z.number().int().min(1), z.record(peerId, z.number().int().min(1))]).optional(),
  /** The audit log (default: <dataDir>/ledger). */
  ledgerDir: z.string().min(1).optional(),
  schema: z.union([z.string().min(1), TableSchemaMessage]),
  model: ModelConfigMessage.default({ kind: 'vae', latentDim: 8, hidden: 64, seed: 42 }),
  strategy: z.enum(['fedavg']).default('fedavg'),
  training: TrainingConfigMessage.default({ epochs: 5, batchSize: 32, learningRate: 0.003 }),
  rounds: z.object({
    total: z.number().int().min(1).max(100_000),
    quorum: z.number().int().min(1),
    minParticipants: z.number().int().min(1),
    deadlineSeconds: z.number().positive().max(7 * 24 * 3600),
  }).strict(),
  privacy: PrivacyConfigSchema.default({ mode: 'off', epsilon: 8, delta: 1e-5 }),
  secureAggregation: z.object({
    scheme: z.enum(['bfv', 'plaintext']).default('bfv'),
    /** The member that generates and seals the HE key (default: the first member). */
    keyHolder: peerId.optional(),
    /** Update values are clipped to [-clip, clip] before 16-bit quantization. */
    clip: z.number().positive().default(64),
    /** Largest consortium the plaintext modulus has headroom for. */
    maxParticipants: z.number().int().min(1).max(1 << 16).default(1024),
  }).strict().default({ scheme: 'bfv', clip: 64, maxParticipants: 1024 }),
  log: z.object({ level: logLevel }).strict().default({ level: 'info' }),
}).strict();
export type AggregatorConfig = z.infer<typeof AggregatorConfigSchema>;

export const NodeConfigSchema = z.object({
  dataDir: z.string().min(1),
  identity: z.string().min(1),
  /** A node only dials out (the aggregator never dials nodes), so by default it opens no listener. */
  listen: z.array(multiaddr).default([]),
  aggregator: z.object({ peerId, address: multiaddr }).strict(),
  data: z.object({ csv: z.string().min(1) }).strict(),
  /** This member's replica of the audit log (default: <dataDir>/ledger). */
  ledgerDir: z.string().min(1).optional(),
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
  /** This site's own privacy budget; defaults to the consortium's. */
  privacy: z.object({ epsilon: z.number().positive().optional(), delta: z.number().gt(0).lt(1).optional() }).strict().optional(),
  log: z.object({ level: logLevel }).strict().default({ level: 'info' }),
}).strict();
export type NodeConfig = z.infer<typeof NodeConfigSchema>;

/** Reads, parses and validates a config file; relative paths in it resolve against its folder. */
export async function loadConfigFile<S extends z.ZodType>(path: string, schema: S): Promise<{ config: z.infer<S>; baseDir: string }> {
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
  return { config: validateConfig(raw, schema, path), baseDir: dirname(resolve(path)) };
}

export function validateConfig<S extends z.ZodType>(raw: unknown, schema: S, source: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0]!;
  const field = first.path.length ? first.path.join('.') : '(top level)';
  const all = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
  throw new FedtwinError('CONFIG_INVALID', `${source}: field "${field}": ${first.message}`, {
    hint: `fix the field named above (see docs/configuration.md)${all.length > 1 ? `; other problems: ${all.slice(1).join('; ')}` : ''}`,
    details: { issues: all },
  });
}

export const resolveFrom = (baseDir: string, p: string): string => resolve(baseDir, p);

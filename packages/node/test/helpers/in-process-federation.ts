// A small federation in one process for the member-side tests: a real aggregator and real members (createNode)
// over libp2p on loopback, plaintext aggregation, a tiny VAE on WDBC's schema, each member's log events kept.
// The sites' CSVs are written by the caller into `dir` as site-<i>.csv.
import { join } from 'node:path';
import { manifestHash, parseManifest, privacyPolicyOf, secureAggregationOf, type Manifest } from '@fedtwin/consortium';
import { createAggregator } from '@fedtwin/aggregator';
import { readEntryPayloads, type EntryPayload } from '@fedtwin/ledger';
import { createTwinVae, encodeTable, type TableSchema } from '@fedtwin/models';
import { createWireHost, generateIdentity, peerIdOf } from '@fedtwin/wire';
import { createNode } from '../../src/node.ts';

export type Event = Record<string, unknown>;
type NodeInit = Parameters<typeof createNode>[0];

export interface InProcessFederationOptions {
  dir: string;
  consortium: string;
  schema: TableSchema;
  members: number;
  rounds: number;
  batchSize: number;
  /** The manifest's `privacy` section. */
  privacy: Record<string, unknown>;
  /** Extra options for member i's createNode (e.g. `synthetic`). */
  node?: (i: number) => Partial<NodeInit>;
  /** Extra fields of member i's entry in the manifest (e.g. `publicCount`). */
  member?: (i: number) => Record<string, unknown>;
  /** The manifest's `secureAggregation` (default plaintext). */
  secureAggregation?: Record<string, unknown>;
  /** Round policy overrides (default: quorum = minParticipants = every member, deadline 600 s). */
  policy?: { quorum?: number; minParticipants?: number; deadlineSeconds?: number };
  /** Stops member i for good (its run is aborted, as a killed process would stop answering) once this returns true for one of its log events. */
  kill?: (i: number, e: Event) => boolean;
}

export interface InProcessFederation {
  ids: string[];
  manifest: Manifest;
  /** Each member's log events, in order. */
  events: Event[][];
  /** The aggregator's ledger directory (closed). */
  ledgerDir: string;
  /** The aggregator's state directory (closed): its aggregates. */
  aggStateDir: string;
  /** Members stopped by `kill`. */
  killed: number[];
}

/** Runs the federation to its end (every member's run() returned) and stops everything. */
export async function runInProcessFederation(o: InProcessFederationOptions): Promise<InProcessFederation> {
  const model = { kind: 'vae' as const, latentDim: 2, hidden: 8, seed: 1 };
  const layout = encodeTable({ schema: o.schema, rows: [] });
  const probe = createTwinVae({ width: layout.width, segments: layout.segments, classes: layout.classes, latentDim: 2, hidden: 8, seed: 1 });
  const modelValues = probe.sharedSize;
  probe.dispose();
  const keys = await Promise.all(Array.from({ length: o.members }, () => generateIdentity()));
  const ids = keys.map((k) => peerIdOf(k));
  const aggKey = await generateIdentity();
  const aggHost = await createWireHost({ privateKey: aggKey, allow: ids });
  const rounds = { total: o.rounds, quorum: o.policy?.quorum ?? o.members, minParticipants: o.policy?.minParticipants ?? o.members, deadlineSeconds: o.policy?.deadlineSeconds ?? 600 };
  const manifest = parseManifest({
    consortium: o.consortium, aggregator: aggHost.peerId, members: ids.map((peerId, i) => ({ peerId, ...(o.member?.(i) ?? {}) })), model,
    training: { epochs: 1, batchSize: o.batchSize, learningRate: 0.003 }, rounds,
    secureAggregation: o.secureAggregation ?? { scheme: 'plaintext' }, privacy: o.privacy,
  });
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const ledgerDir = join(o.dir, 'agg-ledger');
  const aggStateDir = join(o.dir, 'agg-state');
  const killed: number[] = [];
  const agg = await createAggregator({
    host: aggHost, dataDir: aggStateDir, consortium: manifest.consortium, members: ids, schema: o.schema, model, modelValues, strategy: 'fedavg',
    training: manifest.training, rounds: { totalRounds: o.rounds, quorum: rounds.quorum, minParticipants: rounds.minParticipants, deadlineSeconds: rounds.deadlineSeconds },
    privacy: privacyPolicyOf(manifest), secureAggregation: secureAggregationOf(manifest), manifest: { manifest, hash: manifestHash(manifest) },
    ledger: { dir: ledgerDir, identity: aggKey }, logger: quiet,
  });
  const events: Event[][] = ids.map(() => []);
  try {
    await Promise.all(keys.map(async (key, i) => {
      const h = await createWireHost({ privateKey: key, listen: [], allow: [aggHost.peerId] });
      let node: Awaited<ReturnType<typeof createNode>> | undefined;
      const record = (e: Event) => {
        events[i]!.push(e);
        if (o.kill?.(i, e) && !killed.includes(i)) {
          killed.push(i);
          void node?.stop(); // aborts its calls at once (synchronously): nothing more leaves this member
        }
      };
      node = await createNode({
        host: h, aggregator: aggHost.addrs()[0]!, dataDir: join(o.dir, `site-${i}`, 'state'), csvPath: join(o.dir, `site-${i}.csv`), backend: 'cpu',
        logger: { info: record, warn: record, error: record }, consortium: { manifest, hash: manifestHash(manifest) }, identity: key,
        ledgerDir: join(o.dir, `site-${i}`, 'ledger'), heKeyFile: join(o.dir, `site-${i}`, 'he-secret.key'), seed: 1 + i, unreachableGiveUpSeconds: 30,
        ...(o.node?.(i) ?? {}),
      });
      try {
        await node.run().catch((err: unknown) => {
          if (!killed.includes(i)) throw err;
        });
      } finally {
        await node.stop().catch(() => undefined);
        await h.stop().catch(() => undefined);
      }
    }));
  } finally {
    await agg.stop().catch(() => undefined);
    await aggHost.stop().catch(() => undefined);
  }
  return { ids, manifest, events, ledgerDir, aggStateDir, killed };
}

/** Every signed contribution entry in a (closed) ledger directory, in log order. */
export async function contributionEntries(ledgerDir: string): Promise<Array<Extract<EntryPayload, { type: 'contribution' }>>> {
  return (await readEntryPayloads(ledgerDir)).filter((p): p is Extract<EntryPayload, { type: 'contribution' }> => p.type === 'contribution');
}

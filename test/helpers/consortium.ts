import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { generateIdentity, peerIdOf, saveIdentity } from '@fedtwin/wire';
import { dirichletSplit, encodeTable, inferSchema, loadDataset, tableFromCsv, toCsv } from '@fedtwin/models';
import { startDaemon, stopDaemon, waitFor, type Daemon, type LogEvent } from '@fedtwin/sim';
import { manifestHash, parseManifest, schemaHash, type Manifest } from '@fedtwin/consortium';

export interface Consortium {
  dir: string;
  /** The consortium manifest every process pins (consortium.json in dir). */
  manifest: Manifest;
  manifestPath: string;
  manifestHash: string;
  nodeIds: string[];
  aggregatorId: string;
  aggConfig: string;
  nodeConfig(i: number): string;
  /** `crashAt`: this aggregator process kills itself at that crash point (FEDTWIN_CRASH_AT, packages/aggregator/src/crash-points.ts). */
  /** `args`: extra CLI arguments; `prefix`: a command that execs the daemon (e.g. `ip netns exec NS`, test/helpers/netns.ts). */
  startAggregator(opts?: { crashAt?: string; args?: string[]; prefix?: readonly string[] }): Promise<{ daemon: Daemon; events: LogEvent[]; address: string }>;
  startNode(i: number, extraArgs?: string[], opts?: { prefix?: readonly string[] }): { daemon: Daemon; events: LogEvent[] };
  writeNodeConfig(i: number, patch?: Record<string, unknown>): Promise<void>;
  cleanup(): Promise<void>;
}

/** A consortium on disk, as an operator and hospitals would set it up by hand: identities, a
 *  declared schema, per-site CSVs and config files. Daemons are started as real processes. */
export async function createConsortium(opts: {
  nodes: number; rounds: number; quorum: number; minParticipants: number; deadlineSeconds: number;
  epochs?: number; listen?: string; extraMembers?: string[]; privacy?: Record<string, unknown>;
  /** Manifest fields merged over the defaults (e.g. secureAggregation, rounds.witnessQuorum via `rounds`). */
  manifest?: Record<string, unknown>;
}): Promise<Consortium> {
  const dir = await mkdtemp(join(tmpdir(), 'fedtwin-consortium-'));
  const ds = await loadDataset('breast_cancer_wdbc');
  const schema = inferSchema(ds.header, ds.rows, { target: 'diagnosis' });
  const table = tableFromCsv(ds.header, ds.rows, schema);
  const labels = Array.from(encodeTable(table).cond);
  const parts = dirichletSplit(labels, opts.nodes, 1, 3);
  await writeFile(join(dir, 'schema.json'), JSON.stringify(schema));
  const aggKey = await generateIdentity();
  await saveIdentity(join(dir, 'agg.key'), aggKey);
  const aggregatorId = peerIdOf(aggKey);
  const nodeIds: string[] = [];
  for (let i = 0; i < opts.nodes; i++) {
    const key = await generateIdentity();
    await saveIdentity(join(dir, `node${i}.key`), key);
    nodeIds.push(peerIdOf(key));
    await writeFile(join(dir, `node${i}.csv`), toCsv(ds.header, parts[i]!.map((r) => ds.rows[r]!)));
  }
  const manifest = parseManifest({
    consortium: 'test', aggregator: aggregatorId, schemaHash: schemaHash(schema),
    members: [...nodeIds, ...(opts.extraMembers ?? [])].map((peerId, i) => ({ peerId, name: `member ${i}` })),
    model: { kind: 'vae', latentDim: 4, hidden: 16, seed: 1 },
    training: { epochs: opts.epochs ?? 1, batchSize: 64, learningRate: 0.003 },
    rounds: { total: opts.rounds, quorum: opts.quorum, minParticipants: opts.minParticipants, deadlineSeconds: opts.deadlineSeconds },
    // Without DP unless the test asks: a manifest's default is record-level DP (issue 13 item 9), and these
    // fixtures test the protocol, not the accountant (their hand-made updates carry no privacy spend).
    privacy: opts.privacy ?? { mode: 'off' },
    ...(opts.manifest ?? {}),
  });
  const manifestPath = join(dir, 'consortium.json');
  await writeFile(manifestPath, JSON.stringify(manifest));
  const aggConfig = join(dir, 'aggregator.json');
  await writeFile(aggConfig, JSON.stringify({
    consortium: 'consortium.json', dataDir: 'agg-data', identity: 'agg.key', listen: [opts.listen ?? '/ip4/127.0.0.1/tcp/0'], schema: 'schema.json',
  }));
  let address = '';
  const daemons: Daemon[] = [];
  const c: Consortium = {
    dir, nodeIds, aggregatorId, aggConfig, manifest, manifestPath, manifestHash: manifestHash(manifest),
    nodeConfig: (i) => join(dir, `node${i}.json`),
    async writeNodeConfig(i, patch = {}) {
      await writeFile(join(dir, `node${i}.json`), JSON.stringify({
        consortium: 'consortium.json', dataDir: `node${i}-data`, identity: `node${i}.key`, aggregator: { peerId: aggregatorId, address },
        ...(manifest.privacy.mode === 'off' ? { privacy: { mode: 'off' } } : {}),
        data: { csv: `node${i}.csv` }, synthetic: { rows: 20, out: `node${i}-synthetic.csv` }, exitWhenDone: true, ...patch,
      }));
    },
    async startAggregator(opts = {}) {
      const events: LogEvent[] = [];
      await rm(join(dir, 'agg-data', 'listening.json'), { force: true });
      // startDaemon hands this process's environment to the child: the crash point reaches this aggregator only.
      if (opts.crashAt) process.env.FEDTWIN_CRASH_AT = opts.crashAt;
      let daemon: Daemon;
      try {
        daemon = startDaemon('aggregator', ['aggregator', 'start', '--config', aggConfig, ...(opts.args ?? [])], (e) => events.push(e), undefined, { prefix: opts.prefix });
      } finally {
        delete process.env.FEDTWIN_CRASH_AT;
      }
      daemons.push(daemon);
      const l = await waitFor('aggregator listening', async () => {
        if (daemon.child.exitCode !== null) throw new Error(`aggregator exited: ${daemon.stderrTail()}`);
        return readFile(join(dir, 'agg-data', 'listening.json'), 'utf8').then((t) => { try { return JSON.parse(t) as { addrs: string[] }; } catch { return undefined; } }, () => undefined);
      }, 60_000);
      address = l.addrs[0]!;
      return { daemon, events, address };
    },
    startNode(i, extraArgs = [], opts = {}) {
      const events: LogEvent[] = [];
      const daemon = startDaemon(`node ${i}`, ['node', 'start', '--config', join(dir, `node${i}.json`), ...extraArgs], (e) => events.push(e), undefined, { prefix: opts.prefix });
      daemons.push(daemon);
      return { daemon, events };
    },
    async cleanup() {
      for (const d of daemons) await stopDaemon(d, 2000);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await mkdir(join(dir, 'agg-data'), { recursive: true });
  return c;
}

export function runCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const events: LogEvent[] = [];
  const d = startDaemon('cli', args, (e) => events.push(e));
  let stdout = '';
  d.child.stdout?.on('data', (b: Buffer) => { stdout += b.toString(); });
  const t = setTimeout(() => d.child.kill('SIGKILL'), timeoutMs);
  return d.exited.then((code) => { clearTimeout(t); return { code, stdout, stderr: d.stderrTail() }; });
}

/** A TCP port free on 127.0.0.1 right now, for tests that restart a daemon on the same address. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/**
 * Every node daemon's exit code, once all have exited. After `ms` without that, an Error that shows what a stalled
 * federation test needs: the aggregator's events and each node's last events and stderr.
 */
export async function nodesExited(agg: { events: LogEvent[] }, nodes: Array<{ daemon: Daemon; events: LogEvent[] }>, ms: number): Promise<Array<number | null>> {
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
  const codes = await Promise.race([Promise.all(nodes.map((n) => n.daemon.exited)), timeout]);
  if (codes !== 'timeout') return codes;
  const show = (events: LogEvent[]) => events.map((e) => `${String(e.event)} ${String(e.msg ?? '')}`).join('\n');
  throw new Error(`the federation did not finish within ${ms / 1000} s:\n--- aggregator\n${show(agg.events).slice(-8000)}\n${nodes.map((n, i) => `--- node ${i}\n${show(n.events).slice(-3000)}\n${n.daemon.stderrTail()}`).join('\n')}`);
}

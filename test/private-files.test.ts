import { afterEach, describe, expect, it } from 'vitest';
import { chmod, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createConsortium, runCli, type Consortium } from './helpers/consortium.ts';

/** Every directory and file under `root` with its permission bits, relative to `root`. */
async function modes(root: string): Promise<Array<{ path: string; dir: boolean; mode: number }>> {
  const out: Array<{ path: string; dir: boolean; mode: number }> = [{ path: '.', dir: true, mode: (await stat(root)).mode & 0o777 }];
  for (const rel of await readdir(root, { recursive: true })) {
    const st = await stat(join(root, rel));
    out.push({ path: rel, dir: st.isDirectory(), mode: st.mode & 0o777 });
  }
  return out;
}
const exposed = (list: Array<{ path: string; dir: boolean; mode: number }>) =>
  list.filter((e) => e.mode !== (e.dir ? 0o700 : 0o600)).map((e) => `${e.path} ${e.mode.toString(8)}`);

// The node's state holds the private adapter trained on patient records, the ledger the consortium's
// history; an identity key lets anyone speak as the site. None of it may be readable by other users.
describe('private files', () => {
  let c: Consortium | undefined;
  afterEach(async () => { await c?.cleanup(); c = undefined; });

  it('a group- or world-readable identity file stops either daemon at start: exit 2, WIRE_IDENTITY_INSECURE_PERMISSIONS, hint chmod 600', async () => {
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 30 });
    await chmod(join(c.dir, 'agg.key'), 0o644);
    const agg = await runCli(['aggregator', 'start', '--config', c.aggConfig], 20_000);
    expect(agg.code, agg.stderr).toBe(2);
    expect(agg.stderr).toMatch(/error \[WIRE_IDENTITY_INSECURE_PERMISSIONS\]/);
    expect(agg.stderr).toContain(`chmod 600 ${join(c.dir, 'agg.key')}`);
    expect(agg.stderr).not.toMatch(/\n\s+at /);

    await c.writeNodeConfig(0, { aggregator: { peerId: c.aggregatorId, address: '/ip4/127.0.0.1/tcp/9' } });
    await chmod(join(c.dir, 'node0.key'), 0o640);
    const node = await runCli(['node', 'start', '--config', c.nodeConfig(0)], 20_000);
    expect(node.code, node.stderr).toBe(2);
    expect(node.stderr).toMatch(/error \[WIRE_IDENTITY_INSECURE_PERMISSIONS\]/);
    expect(node.stderr).toContain(`chmod 600 ${join(c.dir, 'node0.key')}`);
  }, 60_000);

  it('both daemons keep their data, state and ledger directories 0700 and every file in them 0600', async () => {
    c = await createConsortium({ nodes: 1, rounds: 1, quorum: 1, minParticipants: 1, deadlineSeconds: 30 });
    // The helper made agg-data with the default 0755, as an operator's `mkdir` would: it is tightened, with a log line.
    expect((await stat(join(c.dir, 'agg-data'))).mode & 0o077).not.toBe(0);
    const agg = await c.startAggregator();
    await c.writeNodeConfig(0);
    const node = c.startNode(0);
    expect(await node.daemon.exited, node.daemon.stderrTail()).toBe(0);
    await new Promise((r) => setTimeout(r, 500)); // the aggregator writes result.json when it finishes
    expect(agg.events.some((e) => e.event === 'private-dir' && e.dir === join(c!.dir, 'agg-data') && e.from === '755')).toBe(true);

    const aggFiles = await modes(join(c.dir, 'agg-data'));
    const nodeFiles = await modes(join(c.dir, 'node0-data'));
    for (const want of ['state', 'ledger', 'listening.json']) expect(aggFiles.map((e) => e.path)).toContain(want);
    for (const want of ['state', 'ledger', 'result.json']) expect(nodeFiles.map((e) => e.path)).toContain(want);
    expect(aggFiles.filter((e) => !e.dir).length).toBeGreaterThan(5);
    expect(exposed(aggFiles)).toEqual([]);
    expect(exposed(nodeFiles)).toEqual([]);
    // Outputs the node writes beside its dataDir are its own too.
    expect((await stat(join(c.dir, 'node0-synthetic.csv'))).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(join(c.dir, 'node0-data', 'result.json'), 'utf8')).version).toBe(1);
  }, 120_000);
});

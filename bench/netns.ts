// Round time across hosts vs loopback (issue 15 item 4): the same consortium (aggregator, three hospitals,
// BFV, record-level DP) once with every daemon on 127.0.0.1 and once with each in its own network namespace,
// 20 Mbit/s per host and a 50 ms round trip (netem, or the gateway forwarder where the kernel has no netem:
// test/helpers/netns.ts). Pairs are interleaved because this machine's speed drifts between runs.
//   node bench/netns.ts [--rounds 4] [--hidden 256] [--repeat 2]
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import type { Daemon } from '@fedtwin/sim';
import { createConsortium } from '../test/helpers/consortium.ts';
import { createNetwork, netnsUnavailable, startForwarder, type Network } from '../test/helpers/netns.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, hidden: { type: 'string', default: '256' }, repeat: { type: 'string', default: '2' } } });
const rounds = Number(values.rounds);
const hidden = Number(values.hidden);
const repeat = Number(values.repeat);
const PORT = 7100;

const why = netnsUnavailable();
if (why) {
  console.log(`skipped: ${why}`);
  process.exit(0);
}

/** Seconds from round-open to round-aggregated for rounds 2.. (round 1 also carries the HE key ceremony). */
async function run(mode: 'loopback' | 'netns'): Promise<number[]> {
  let net: Network | undefined;
  const relays: ChildProcess[] = [];
  const agg = mode === 'netns' ? (net = createNetwork(['aggregator', 'gateway', 'h0', 'h1', 'h2'], { delayMs: 12.5, rateMbit: 20 })).hosts.get('aggregator')! : undefined;
  const c = await createConsortium({
    nodes: 3, rounds, quorum: 3, minParticipants: 3, deadlineSeconds: 600,
    listen: agg ? `/ip4/${agg.ip}/tcp/${PORT}` : '/ip4/127.0.0.1/tcp/0',
    privacy: { mode: 'record', epsilon: 8, delta: 1e-5, clip: 1 },
    manifest: { model: { kind: 'vae', latentDim: 8, hidden, seed: 1 } },
  });
  try {
    const a = await c.startAggregator(agg ? { prefix: agg.exec } : {});
    let address = a.address;
    if (net && agg) {
      const gw = net.hosts.get('gateway')!;
      relays.push(await startForwarder(gw, agg, PORT, net.delayInKernel ? 0 : 25));
      address = `/ip4/${gw.ip}/tcp/${PORT}/p2p/${c.aggregatorId}`;
    }
    const nodes: Daemon[] = [];
    for (let i = 0; i < 3; i++) {
      await c.writeNodeConfig(i, { aggregator: { peerId: c.aggregatorId, address } });
      nodes.push(c.startNode(i, [], net ? { prefix: net.hosts.get(`h${i}`)!.exec } : {}).daemon);
    }
    const codes = await Promise.all(nodes.map((d) => d.exited));
    if (codes.some((x) => x !== 0)) throw new Error(`a node failed: ${nodes.map((d) => d.stderrTail()).join(' | ')}`);
    const opened = new Map<number, number>();
    const out: number[] = [];
    for (const e of a.events) {
      if (e.event === 'round-open') opened.set(Number(e.round), Date.parse(String(e.time)));
      if (e.event === 'round-aggregated' && Number(e.round) > 1) out.push((Date.parse(String(e.time)) - opened.get(Number(e.round))!) / 1000);
    }
    return out;
  } finally {
    for (const r of relays) r.kill('SIGKILL');
    await c.cleanup();
    net?.destroy();
  }
}

const median = (xs: number[]) => { const s = [...xs].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
console.log(`3 hospitals, BFV, record DP, VAE hidden ${hidden}, ${rounds} rounds (round 1 with the key ceremony left out); netns: 20 Mbit/s per host, 50 ms RTT`);
const ratios: number[] = [];
for (let k = 0; k < repeat; k++) {
  const lo = median(await run('loopback'));
  const ns = median(await run('netns'));
  ratios.push(ns / lo);
  console.log(`pair ${k + 1}: median round ${lo.toFixed(2)} s loopback, ${ns.toFixed(2)} s across namespaces: ${(ns / lo).toFixed(2)}×`);
}
console.log(`median of pairs: ${median(ratios).toFixed(2)}× loopback`);

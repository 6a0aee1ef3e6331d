// The README's example, kept running.
import { expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { createEntrySigner } from '@fedtwin/ledger';
import { quantize } from '@fedtwin/he';
import * as sa from '../src/index.ts';

it('README example: one round, member 4 drops after sharing, the sum of the other four is exact', async () => {
  const ids = await Promise.all([0, 1, 2, 3, 4].map(async () => createEntrySigner(await generateKeyPair('Ed25519'), 'fedtwin/demo')));
  const cfg = { consortium: 'demo', round: 1, members: ids.map((i) => i.peerId), threshold: 3, length: 4 };
  const p0 = ids.map((id) => sa.advertise(cfg, id));
  const { accepted } = sa.collectAdvertisements(cfg, p0.map((p) => p.ad));
  const p1 = p0.map((p) => sa.shareKeys(p.state, accepted));
  const { round, inboxes } = sa.routeShares(cfg, accepted, p1.map((p) => p.bundle));
  const xs = [0, 1, 2, 3].map((k) => quantize([0.1 * k, -0.2, 0.3, 1], { scale: 32767, clip: 1 }).values);
  const p2 = p1.slice(0, 4).map((p, k) => sa.maskInput(p.state, inboxes.get(p.state.me)!, xs[k]));
  const request = sa.recoveryRequest(round, p2.map((p) => p.masked.member));
  expect(request.dropped).toEqual([ids[4].peerId]);
  const responses = p2.map((p) => sa.answerRecovery(p.state, request).response);
  const sum = sa.unmask(round, request, p2.map((p) => p.masked), responses);
  expect(Array.from(sum)).toEqual([0, 1, 2, 3].map((i) => xs.reduce((a, x) => a + x[i], 0)));
});

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FedtwinError } from '@fedtwin/errors';
import { JoinResponse, KeyPublishAck, KeyResponse, Protocols } from '@fedtwin/protocol';
import { NodeConfigSchema, loadConfigFile, resolveFrom } from './config.ts';
import { loadManifest, requireSame, secureAggregationOf } from '@fedtwin/consortium';

/**
 * Key rotation, run on the key holder's machine beside its node: a new BFV key with the same
 * parameters, sealed for every member (the holder included, so its running daemon picks it up like
 * everyone else) and published with epoch + 1. The aggregator stamps rounds opened afterwards with the
 * new key id; members keep the old key to finish the round in flight.
 */
export async function rotateKey(configPath: string): Promise<{ keyId: string; epoch: number; previousKeyId: string }> {
  const { config, baseDir } = await loadConfigFile(configPath, NodeConfigSchema);
  const [wire, he] = await Promise.all([import('@fedtwin/wire'), import('@fedtwin/he')]);
  const identity = await wire.loadIdentity(resolveFrom(baseDir, config.identity));
  const me = wire.peerIdOf(identity);
  const dataDir = resolveFrom(baseDir, config.dataDir);
  const keyFile = join(dataDir, 'he-secret.key');
  // Who the aggregator is and whom the key is sealed for come from the pinned manifest, never from the aggregator.
  const { manifest } = await loadManifest(resolveFrom(baseDir, config.consortium));
  const aggId = manifest.aggregator;
  const address = config.aggregator.address.includes('/p2p/') ? config.aggregator.address : `${config.aggregator.address}/p2p/${aggId}`;
  const host = await wire.createWireHost({ privateKey: identity, listen: [], allow: [aggId] });
  try {
    const call = async <T>(name: string, header: unknown, response: import('zod').ZodType<T>, body?: Uint8Array) =>
      (await host.request<unknown, T>(address, name, { header, body }, { response, maxBodyBytes: 0, timeoutMs: 60_000 })).header;
    const joinInfo = await call(Protocols.join, { nodeVersion: process.version, backend: 'none' }, JoinResponse);
    const sa = secureAggregationOf(manifest);
    requireSame('the secure aggregation', sa, joinInfo.secureAggregation);
    if (sa.scheme !== 'bfv') throw new FedtwinError('KEYS_NOT_BFV', 'the consortium does not use HE secure aggregation', { hint: 'nothing to rotate' });
    if (sa.keyHolder !== me) throw new FedtwinError('KEYS_NOT_HOLDER', `this member (${me}) is not the key holder (${sa.keyHolder})`, { hint: 'run keys rotate with the node config of the key holder' });
    const cur = await call(Protocols.key, { waitMs: 0 }, KeyResponse);
    if (cur.status !== 'ready') throw new FedtwinError('KEYS_NO_KEY', 'no HE key has been published yet', { hint: 'start the node of the key holder first; it runs the initial ceremony' });
    const old = await he.loadSecretKeyFile(keyFile);
    if (old.keyId !== cur.keyId) throw new FedtwinError('KEYS_STALE', `the local key ${old.keyId} is not the key in force ${cur.keyId}`, { hint: 'let the node daemon catch up first' });
    const ctx = await he.createHeContext(old.params);
    try {
      const next = he.generateKeys(ctx);
      const epoch = cur.epoch + 1;
      // Keep both keys before anything leaves this machine: the old one decrypts the round in flight.
      const keyDir = join(dataDir, 'he-keys');
      await mkdir(keyDir, { recursive: true });
      await he.saveSecretKeyFile(join(keyDir, `${old.keyId}.key`), old);
      await he.saveSecretKeyFile(join(keyDir, `${next.keyId}.key`), next);
      const bytes = he.serializeSecretKey(next);
      const boxes = sa.members.map((m) => he.sealKeyFor({ recipientPeerId: m, secretKey: bytes, keyId: next.keyId, epoch, holderKey: identity }));
      await call(Protocols.keyPublish, { keyId: next.keyId, epoch, boxes: boxes.length }, KeyPublishAck, new TextEncoder().encode(JSON.stringify(boxes)));
      await he.saveSecretKeyFile(keyFile, next);
      return { keyId: next.keyId, epoch, previousKeyId: old.keyId };
    } finally {
      ctx.dispose();
    }
  } finally {
    await host.stop();
  }
}

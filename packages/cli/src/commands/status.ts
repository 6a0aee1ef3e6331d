import type { Command } from 'commander';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { loadDaemonConfig, resolveFrom } from '../config.ts';
import type { AggregatorStatus } from '../status/aggregator-status.ts';
import type { NodeStatus } from '../status/node-status.ts';
import { readLiveStatus } from '../status/publish.ts';

export function registerStatusCommand(program: Command): void {
  program.command('status')
    .description('Show a daemon\'s rounds, members, privacy spending, HE key and ledger: published by the running daemon (status.json), or read from its dataDir when it is stopped')
    .requiredOption('--config <file>', 'the aggregator\'s or the node\'s config')
    .option('--json', 'print the status as one JSON object (ε at full precision)')
    .action(async (opts: { config: string; json?: boolean }) => {
      const status = await readStatus(opts.config);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(status)}\n`);
        return;
      }
      const { aggregatorText, nodeText } = await import('../status/print.ts');
      process.stdout.write(status.role === 'aggregator' ? aggregatorText(status) : nodeText(status));
    });
}

/**
 * A running daemon holds Level's lock on its state and ledger, so its own status.json is read; otherwise the
 * dataDir is (Level state and ledger, written nowhere). Only a status.json whose writer still runs counts as live.
 */
export async function readStatus(configPath: string): Promise<AggregatorStatus | NodeStatus> {
  const d = await loadDaemonConfig(configPath);
  const dataDir = resolveFrom(d.baseDir, d.config.dataDir);
  const ledgerDir = d.config.ledgerDir ? resolveFrom(d.baseDir, d.config.ledgerDir) : `${dataDir}/ledger`;
  const live = await readLiveStatus<AggregatorStatus | NodeStatus>(dataDir);
  if (live) return live.status;
  const { loadManifest } = await import('@fedtwin/consortium');
  const { manifest } = await loadManifest(resolveFrom(d.baseDir, d.config.consortium));
  try {
    if (d.role === 'aggregator') {
      const { readAggregatorDataDir } = await import('../status/aggregator-status.ts');
      return await readAggregatorDataDir({ stateDir: `${dataDir}/state`, ledgerDir, manifest, peerId: manifest.aggregator, now: Date.now() });
    }
    const [{ readNodeDataDir }, { loadIdentity, peerIdOf }] = await Promise.all([import('../status/node-status.ts'), import('@fedtwin/wire')]);
    const peerId = peerIdOf(await loadIdentity(resolveFrom(d.baseDir, d.config.identity)));
    return await readNodeDataDir({ stateDir: `${dataDir}/state`, ledgerDir, consortium: manifest.consortium, peerId, now: Date.now() });
  } catch (err) {
    // Locked, yet no live status.json: a daemon of an older fedtwin (which publishes none), or another process.
    if (isFedtwinError(err) && (err.code === 'STATE_LOCKED' || err.code === 'LEDGER_LOCKED')) {
      throw new FedtwinError('STATUS_UNAVAILABLE', `${dataDir} is in use by a running process that publishes no status (${err.code})`, {
        hint: 'the daemon predates fedtwin status (restart it with this version), or another process holds the directory; or read a copy: cp -r the dataDir and point a config at the copy',
        cause: err,
      });
    }
    throw err;
  }
}

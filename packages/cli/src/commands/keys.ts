import type { Command } from 'commander';
import { access } from 'node:fs/promises';
import { FedtwinError } from '@fedtwin/errors';

export function registerKeysCommands(program: Command): void {
  const keys = program.command('keys').description('Identities and keys');
  keys.command('generate')
    .description('Create a persisted Ed25519 identity and print its peer ID (put it on the consortium allowlist)')
    .requiredOption('--out <file>', 'where to write the key (mode 0600)')
    .option('--force', 'overwrite an existing file')
    .option('--json', 'print {"peerId","file"} as JSON')
    .action(async (opts: { out: string; force?: boolean; json?: boolean }) => {
      if (!opts.force && await access(opts.out).then(() => true, () => false)) {
        throw new FedtwinError('KEYS_EXISTS', `${opts.out} already exists`, { hint: 'pass --force to replace it (the old peer ID is lost), or choose another path' });
      }
      const { generateIdentity, peerIdOf, saveIdentity } = await import('@fedtwin/wire');
      const key = await generateIdentity();
      await saveIdentity(opts.out, key);
      const peerId = peerIdOf(key);
      process.stdout.write(opts.json ? `${JSON.stringify({ peerId, file: opts.out })}\n` : `${peerId}\n`);
    });

  keys.command('show')
    .description('Show the HE key id and public parameters of a member\'s key file (never the key itself)')
    .requiredOption('--key <file>', 'the HE secret key file (e.g. <dataDir>/he-secret.key)')
    .option('--json', 'print {"keyId","paramsId","params"} as JSON')
    .action(async (opts: { key: string; json?: boolean }) => {
      const { loadSecretKeyFile, publicInfo } = await import('@fedtwin/he');
      const info = publicInfo(await loadSecretKeyFile(opts.key));
      if (opts.json) process.stdout.write(`${JSON.stringify(info)}\n`);
      else {
        process.stdout.write(`key id     ${info.keyId}\nparams id  ${info.paramsId}\nparams     ${JSON.stringify(info.params)}\n`);
      }
    });

  keys.command('rotate')
    .description('On the key holder: generate a new HE key, seal it for every member and publish it; rounds opened from now on use it')
    .requiredOption('--config <file>', 'the key holder\'s node config')
    .option('--json', 'print {"keyId","epoch","previousKeyId"} as JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const { rotateKey } = await import('../rotate.ts');
      const r = await rotateKey(opts.config);
      process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : `rotated HE key: ${r.previousKeyId} → ${r.keyId} (epoch ${r.epoch}); effective from the next round\n`);
    });
}

import type { Command } from 'commander';
import { access } from 'node:fs/promises';
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { unignoredInGitTree } from '../git-ignore.ts';

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
      const tree = unignoredInGitTree(opts.out);
      if (tree) {
        process.stderr.write(`warning: ${opts.out} is inside the git work tree ${tree.root} and git does not ignore it: `
          + `add "*.key" to ${tree.root}/.gitignore (or keep keys outside the repository), so the identity is never committed\n`);
      }
    });

  keys.command('show')
    .description('Print the peer ID of an identity (--in), or the HE key id and public parameters of a member\'s HE key file (--key); never the key itself')
    .option('--in <file>', 'an identity file (what keys generate --out wrote, or a config\'s "identity")')
    .option('--key <file>', 'the HE secret key file (e.g. <dataDir>/he-secret.key)')
    .option('--json', 'print {"peerId","file"} (--in) or {"keyId","paramsId","params"} (--key) as JSON')
    .action(async (opts: { in?: string; key?: string; json?: boolean }) => {
      if ((opts.in === undefined) === (opts.key === undefined)) {
        throw new FedtwinError('CLI_BAD_ARGUMENT', 'pass one of --in (an identity: prints its peer ID) or --key (an HE key file)', { hint: 'e.g. fedtwin keys show --in node.key' });
      }
      if (opts.in !== undefined) return showIdentity(opts.in, opts.json);
      const { loadSecretKeyFile, publicInfo } = await import('@fedtwin/he');
      const info = publicInfo(await loadSecretKeyFile(opts.key!));
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

/** The peer ID an existing identity file stands for (what the manifest lists), read the way the daemons read it. */
async function showIdentity(file: string, json?: boolean): Promise<void> {
  const { loadIdentity, peerIdOf } = await import('@fedtwin/wire');
  let peerId: string;
  try {
    peerId = peerIdOf(await loadIdentity(file));
  } catch (err) {
    if (isFedtwinError(err, 'WIRE_IDENTITY_CORRUPT')) {
      throw new FedtwinError(err.code, err.message, { hint: 'an identity is the file keys generate --out wrote; for an HE key file (he-secret.key) use --key', cause: err });
    }
    throw err;
  }
  process.stdout.write(json ? `${JSON.stringify({ peerId, file })}\n` : `${peerId}\n`);
}

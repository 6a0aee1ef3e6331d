import type { Command } from 'commander';
import { access, readFile, writeFile } from 'node:fs/promises';
import { FedtwinError } from '@fedtwin/errors';

/** `fedtwin consortium init|hash`: the manifest every member pins (docs/configuration.md). */
export function registerConsortiumCommands(program: Command): void {
  const c = program.command('consortium').description('The consortium manifest every member installs and pins');
  c.command('init')
    .description('Write a consortium manifest: members, aggregator, key holder, privacy, rounds, model')
    .requiredOption('--members <list>', 'comma-separated member peer IDs, each optionally as name=peerID (e.g. "St Anne=12D3Koo…,12D3Koo…")')
    .requiredOption('--aggregator <peerId>', 'the aggregator\'s peer ID')
    .requiredOption('--out <file>', 'where to write the manifest (.yaml or .json)')
    .option('--id <name>', 'consortium id (the ledger origin is fedtwin/<id>)', 'fedtwin')
    .option('--key-holder <peerId>', 'member that generates and seals the HE key (default: the first member)')
    .option('--plaintext', 'no secure aggregation (a baseline; the aggregator sees each update; record-level DP only)')
    .option('--aggregation <scheme>', 'secagg (pairwise masking, the default: no key anywhere, the aggregator plus fewer than --threshold members learn nothing of one update; docs/he.md §9) | bfv (one consortium HE key) | plaintext', 'secagg')
    .option('--threshold <t>', 'secagg: t in (m/2, m] (m = members, or --degree + 1); default ⌊m/2⌋ + 1; rounds survive m − t dropouts')
    .option('--degree <k>', 'secagg: sparse neighbourhood graph degree (even; SecAgg+), default: every member masks with every other')
    .option('--privacy <mode>', 'off | record | site | both (site and both need secure aggregation; off means no DP at all)', 'record')
    .option('--epsilon <e>', 'each member\'s ε budget over the federation', '8')
    .option('--delta <d>', 'δ', '1e-5')
    .option('--clip <c>', 'DP clip (per example for record, per update for site)', '1')
    .option('--generator <kind>', 'the synthesizer the members federate: vae (DP-SGD model deltas) | marginals (federated MST: 3 rounds of noisy counts; record-level DP or off)', 'vae')
    .option('--rounds <n>', 'rounds (vae; the marginals generator always runs 3)', '5')
    .option('--calibrate', 'vae with --privacy record or off: round 1 releases the numeric columns\' 1-way counts (Skellam shares, summed like any round; its ε composed with DP-SGD\'s) and the twins are calibrated onto them (docs/models.md, "Column calibration")')
    .option('--quorum <n>', 'aggregate as soon as this many contributed (default: all members)')
    .option('--min-participants <n>', 'aggregate at the deadline with at least this many (default: quorum)')
    .option('--deadline <seconds>', 'seconds a round stays open', '300')
    .option('--schema <file>', 'pin this table schema (its hash goes into the manifest)')
    .option('--force', 'overwrite an existing file')
    .option('--json', 'print {"file","manifestHash"} as JSON')
    .action(async (opts: {
      members: string; aggregator: string; out: string; id: string; keyHolder?: string; plaintext?: boolean; aggregation: string; threshold?: string; degree?: string; privacy: string; epsilon: string; delta: string;
      clip: string; generator: string; rounds: string; calibrate?: boolean; quorum?: string; minParticipants?: string; deadline: string; schema?: string; force?: boolean; json?: boolean;
    }) => {
      const { parseManifest, manifestHash, manifestYaml, schemaHash, DEFAULT_VAE_MODEL } = await import('@fedtwin/consortium');
      if (!opts.force && await access(opts.out).then(() => true, () => false)) {
        throw new FedtwinError('CLI_BAD_ARGUMENT', `${opts.out} already exists`, { hint: 'pass --force to replace it (every member must then install the new one)' });
      }
      const members = opts.members.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
        const eq = s.lastIndexOf('=');
        return eq > 0 ? { name: s.slice(0, eq).trim(), peerId: s.slice(eq + 1).trim() } : { peerId: s };
      });
      const num = (flag: string, v: string | undefined) => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isFinite(n)) throw new FedtwinError('CLI_BAD_ARGUMENT', `${flag} must be a number, got ${JSON.stringify(v)}`);
        return n;
      };
      if (opts.generator !== 'vae' && opts.generator !== 'marginals') throw new FedtwinError('CLI_BAD_ARGUMENT', `--generator must be vae or marginals, got ${JSON.stringify(opts.generator)}`);
      const marginals = opts.generator === 'marginals';
      if (opts.calibrate && marginals) throw new FedtwinError('CLI_BAD_ARGUMENT', '--calibrate applies to --generator vae (the marginals generator releases counts already)');
      const quorum = num('--quorum', opts.quorum) ?? members.length;
      let schemaHashValue: string | undefined;
      if (opts.schema) {
        try {
          schemaHashValue = schemaHash(JSON.parse(await readFile(opts.schema, 'utf8')));
        } catch (err) {
          throw new FedtwinError('CLI_BAD_ARGUMENT', `--schema ${opts.schema}: ${(err as Error).message}`, { hint: 'point --schema at the JSON table schema (fedtwin schema infer writes one)' });
        }
      }
      const privacy = opts.privacy === 'off'
        ? { mode: 'off', epsilon: num('--epsilon', opts.epsilon), delta: num('--delta', opts.delta) }
        : opts.privacy === 'both'
          ? { mode: 'both', epsilon: num('--epsilon', opts.epsilon), delta: num('--delta', opts.delta), clip: num('--clip', opts.clip), site: { clip: num('--clip', opts.clip) } }
          : { mode: opts.privacy, epsilon: num('--epsilon', opts.epsilon), delta: num('--delta', opts.delta), clip: num('--clip', opts.clip) };
      const scheme = opts.plaintext ? 'plaintext' : opts.aggregation;
      if (scheme !== 'bfv' && scheme !== 'secagg' && scheme !== 'plaintext') throw new FedtwinError('CLI_BAD_ARGUMENT', `--aggregation must be bfv, secagg or plaintext, got ${JSON.stringify(opts.aggregation)}`);
      if (scheme !== 'secagg' && (opts.threshold !== undefined || opts.degree !== undefined)) throw new FedtwinError('CLI_BAD_ARGUMENT', '--threshold and --degree apply to --aggregation secagg only', { hint: 'add --aggregation secagg' });
      if (scheme === 'secagg' && members.length < 2) {
        throw new FedtwinError('CLI_BAD_ARGUMENT', `--members names ${members.length} member: secure aggregation by masking (secagg, the default) needs at least 2`, { hint: 'list every member, or choose --aggregation bfv (or plaintext) for a one-member consortium' });
      }
      const threshold = num('--threshold', opts.threshold), degree = num('--degree', opts.degree);
      const secureAggregation = scheme === 'plaintext' ? { scheme }
        : scheme === 'secagg' ? { scheme, ...(threshold !== undefined ? { threshold } : {}), ...(degree !== undefined ? { degree } : {}) }
          : { scheme, ...(opts.keyHolder ? { keyHolder: opts.keyHolder } : {}) };
      const manifest = parseManifest({
        consortium: opts.id, aggregator: opts.aggregator, members,
        ...(schemaHashValue ? { schemaHash: schemaHashValue } : {}),
        secureAggregation,
        privacy,
        ...(marginals ? { model: { kind: 'marginals', seed: 42 } } : opts.calibrate ? { model: { ...DEFAULT_VAE_MODEL, calibrate: true } } : {}),
        rounds: { total: marginals ? 3 : num('--rounds', opts.rounds), quorum, minParticipants: num('--min-participants', opts.minParticipants) ?? quorum, deadlineSeconds: num('--deadline', opts.deadline) },
      }, 'consortium init');
      // No DP is allowed, never silent: each member must also opt in (privacy: { mode: off } in its node config).
      if (manifest.privacy.mode === 'off') process.stderr.write('warning: this manifest has no differential privacy (--privacy off): updates carry no DP; each member must opt in with privacy: { mode: off } in its node config and then logs a warning every round\n');
      const text = opts.out.endsWith('.json') ? `${JSON.stringify(manifest, null, 2)}\n` : manifestYaml(manifest);
      await writeFile(opts.out, text);
      const hash = manifestHash(manifest);
      process.stdout.write(opts.json ? `${JSON.stringify({ file: opts.out, manifestHash: hash })}\n` : `wrote ${opts.out}\nmanifest hash ${hash}\n`);
    });

  c.command('hash')
    .description('Print the manifest hash of a consortium manifest (every member must see the same one)')
    .argument('<file>', 'the manifest (.yaml or .json)')
    .option('--json', 'print {"manifestHash","consortium","members"} as JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const { loadManifest } = await import('@fedtwin/consortium');
      const { manifest, hash } = await loadManifest(file);
      process.stdout.write(opts.json ? `${JSON.stringify({ manifestHash: hash, consortium: manifest.consortium, members: manifest.members.length })}\n` : `${hash}\n`);
    });
}

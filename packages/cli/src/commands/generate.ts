import type { Command } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
import { formatEpsilon } from '../format.ts';

const MAX_ROWS = 10_000_000; // @fedtwin/models MAX_SAMPLE_ROWS (not imported here: keeps `fedtwin --help` light)

export function registerGenerateCommand(program: Command): void {
  program.command('generate')
    .description('Sample synthetic rows from a saved model (model.json of a node or of `fedtwin sim`), for a class or a category on demand; post-processing: spends no privacy budget')
    .requiredOption('--model <file>', 'the saved model (model.json)')
    .requiredOption('--rows <n>', `rows to generate (1 to ${MAX_ROWS})`)
    .requiredOption('--out <file>', 'CSV to write (the model\'s columns and formats)')
    .option('--class <value>', 'every row of this class (a category of the target column)')
    .option('--condition <col=value>', 'every row with this category in a categorical column')
    .option('--seed <s>', 'seed of the sampling (reproducible output; costs no privacy)')
    .option('--json', 'print the summary as JSON')
    .action(async (o: { model: string; rows: string; out: string; class?: string; condition?: string; seed?: string; json?: boolean }) => {
      const { generateFromModel, parseCondition, parseRows } = await import('../generate.ts');
      const rows = parseRows(o.rows, MAX_ROWS);
      const cond = parseCondition(o);
      const seed = o.seed === undefined ? undefined : Number(o.seed);
      if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 31)) {
        throw new FedtwinError('CLI_BAD_ARGUMENT', `--seed must be a whole number from 0 to ${2 ** 31 - 1}, got "${o.seed}"`);
      }
      const s = await generateFromModel({ model: o.model, rows, out: o.out, ...(cond ? { condition: { column: cond.column ?? '', value: cond.value } } : {}), ...(seed !== undefined ? { seed } : {}) });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(s)}\n`);
        return;
      }
      const eps = s.privacy.epsilon === null ? 'no DP guarantee (the model was trained with DP off)' : `ε = ${formatEpsilon(s.privacy.epsilon)}, δ = ${s.privacy.delta} (${s.privacy.mode}-level), as recorded in the model`;
      process.stdout.write([
        `wrote ${s.rows} rows to ${s.out} from the ${s.generator} model ${s.model}${s.condition ? ` (${s.condition.column} = ${s.condition.value})` : ''}`,
        `  privacy: generation is post-processing of the released model: no extra ε spent; the rows carry the model's ${eps}`,
      ].join('\n') + '\n');
    });
}

import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';

export function registerSchemaCommands(program: Command): void {
  const schema = program.command('schema').description('The consortium table schema (declared column bounds and categories)');
  schema.command('infer')
    .description('Draft a schema from a CSV: review the bounds and categories before the consortium adopts it')
    .requiredOption('--csv <file>', 'a CSV with the consortium\'s columns (public or synthetic reference data, not a site\'s private records)')
    .requiredOption('--target <column>', 'the label column to condition on (categorical)')
    .option('--out <file>', 'write the schema here (default: stdout)')
    .option('--max-categories <n>', 'a column with at most this many distinct values is categorical', '50')
    .action(async (o: { csv: string; target: string; out?: string; maxCategories: string }) => {
      const { readCsvFile, inferSchema } = await import('@fedtwin/models');
      const { header, rows } = await readCsvFile(o.csv);
      const s = inferSchema(header, rows, { target: o.target, maxCategories: Number(o.maxCategories) });
      const text = `${JSON.stringify(s, null, 2)}\n`;
      if (o.out) await writeFile(o.out, text);
      else process.stdout.write(text);
    });
}

import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { FedtwinError } from '@fedtwin/errors';

/**
 * What `schema infer` says every time: bounds and categories computed from records are those records' extremes
 * and distinct values (the oldest patient's age, a one-patient category), and a consortium schema is public to
 * every member. The written schema carries "boundsSource": "data" until someone declares the bounds.
 */
export function boundsFromDataWarning(csv: string): string {
  return `warning: the bounds and categories were inferred from ${csv}: they disclose its smallest and largest values and every category it contains. `
    + 'If these are a site\'s private records, do not adopt this schema: declare the consortium\'s bounds from public knowledge (clinical reference ranges, '
    + 'a data dictionary, a public data set), then set "boundsSource" to "declared". The schema is marked "boundsSource": "data" (docs/data.md, "Drafting a schema").\n';
}

export function registerSchemaCommands(program: Command): void {
  const schema = program.command('schema').description('The consortium table schema (declared column bounds and categories)');
  schema.command('infer')
    .description('Draft a schema from a CSV: review the bounds and categories before the consortium adopts it')
    .requiredOption('--csv <file>', 'a CSV with the consortium\'s columns (public or synthetic reference data, not a site\'s private records)')
    .requiredOption('--target <column>', 'the label column to condition on (categorical)')
    .option('--out <file>', 'write the schema here (default: stdout)')
    .option('--max-categories <n>', 'a column with at most this many distinct values is categorical', '50')
    .option('--keep <columns>', 'comma-separated columns to keep as features although they look like identifiers')
    .option('--missing <tokens>', 'comma-separated fields that mean "missing" (default: empty, NA, N/A, ?, NaN); a column holding any is declared "allowMissing"')
    .option('--zero-missing <columns>', 'comma-separated numeric columns where 0 means "not measured" (declared "zeroIsMissing")')
    .action(async (o: { csv: string; target: string; out?: string; maxCategories: string; keep?: string; missing?: string; zeroMissing?: string }) => {
      const { readCsvFile, inferSchema, detectIdColumns, describeIdColumn, withoutColumns } = await import('@fedtwin/models');
      const table = await readCsvFile(o.csv);
      const keep = (o.keep ?? '').split(',').map((c) => c.trim()).filter(Boolean);
      const unknown = keep.filter((c) => !table.header.includes(c));
      if (unknown.length) {
        throw new FedtwinError('DATA_MISSING_COLUMN', `--keep names ${unknown.map((c) => `"${c}"`).join(', ')}, not in the header of ${o.csv}`, { hint: `columns are: ${table.header.join(', ')}` });
      }
      // An identifier as a feature teaches nothing that generalises, and its drafted bounds disclose the id range.
      const ids = detectIdColumns(table.header, table.rows, { keep: [o.target, ...keep] });
      const { header, rows } = withoutColumns(table.header, table.rows, ids.map((c) => c.column));
      const zeroIsMissing = (o.zeroMissing ?? '').split(',').map((c) => c.trim()).filter(Boolean);
      // Split as given: an empty item (",NA") is the empty-field token.
      const missingTokens = o.missing === undefined ? undefined : o.missing.split(',').map((t) => t.trim());
      const s = inferSchema(header, rows, { target: o.target, maxCategories: Number(o.maxCategories), missingTokens, zeroIsMissing });
      // The marker first, where a reviewer sees it; it is part of the schema (and of its hash) until replaced.
      const text = `${JSON.stringify({ boundsSource: 'data', ...s }, null, 2)}\n`;
      if (o.out) await writeFile(o.out, text);
      else process.stdout.write(text);
      process.stderr.write(boundsFromDataWarning(o.csv));
      const missing = s.columns.filter((c) => c.allowMissing === true || (c.kind === 'numeric' && c.zeroIsMissing === true)).map((c) => c.name);
      if (missing.length > 0) {
        process.stderr.write(`note: missing values declared in ${missing.join(', ')} (${[s.missingTokens ? `tokens ${s.missingTokens.map((t) => JSON.stringify(t)).join(', ')}` : '', zeroIsMissing.length ? `zero means missing in ${zeroIsMissing.join(', ')}` : ''].filter(Boolean).join('; ')}): they are modelled, not refused (docs/data.md, "Missing values")\n`);
      }
      for (const c of ids) {
        process.stderr.write(`warning: left out ${describeIdColumn(c)}; keep it with --keep ${c.column} if it is a real feature\n`);
      }
    });
}

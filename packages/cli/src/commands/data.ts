import type { Command } from 'commander';
import { access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FedtwinError } from '@fedtwin/errors';
import { NodeConfigSchema, loadConfigFile, resolveFrom } from '../config.ts';
import type { DataCheckReport } from '../data-check.ts';

export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('A site\'s records, checked before they are used');
  data.command('check')
    .description('Check the node\'s CSV against the consortium schema offline: missing and undeclared columns, empty or unparsable values, values the node would clamp or drop (counts only, never a value); exit 0 if the node would load it, 2 if not')
    .requiredOption('--config <file>', 'the node config (its data.csv and consortium manifest are used)')
    .option('--schema <file>', 'the consortium\'s table schema (default: schema.json beside the manifest); checked against the manifest\'s schemaHash')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { config: string; schema?: string; json?: boolean }) => {
      const { config, baseDir } = await loadConfigFile(opts.config, NodeConfigSchema);
      const manifestPath = resolveFrom(baseDir, config.consortium);
      const [{ loadManifest, schemaHash }, { readCsvFile }, { loadSchema }, { checkCsvAgainstSchema }] = await Promise.all([
        import('@fedtwin/consortium'), import('@fedtwin/models'), import('./daemons.ts'), import('../data-check.ts'),
      ]);
      const { manifest } = await loadManifest(manifestPath);
      const schemaPath = opts.schema ?? join(dirname(manifestPath), 'schema.json');
      if (!opts.schema && !(await access(schemaPath).then(() => true, () => false))) {
        throw new FedtwinError('CLI_BAD_ARGUMENT', `no --schema given and no schema.json beside the manifest (${schemaPath})`, { hint: 'pass --schema with the table schema the consortium published with its manifest' });
      }
      const schema = await loadSchema(schemaPath, process.cwd());
      // The schema the aggregator will announce must hash to the manifest's pin; a different file checks nothing.
      if (manifest.schemaHash !== undefined && schemaHash(schema) !== manifest.schemaHash) {
        throw new FedtwinError('CONSORTIUM_MISMATCH', `${schemaPath} is not the consortium's schema: its hash ${schemaHash(schema).slice(0, 16)}… is not the manifest's schemaHash ${manifest.schemaHash.slice(0, 16)}…`, {
          hint: 'use the schema file the consortium published with the manifest (its hash is pinned in schemaHash)',
          details: { field: 'schemaHash', pinned: manifest.schemaHash, announced: schemaHash(schema) },
        });
      }
      const csvPath = resolveFrom(baseDir, config.data.csv);
      const unitColumn = manifest.privacy.mode === 'record' || manifest.privacy.mode === 'both' ? manifest.privacy.unitColumn : undefined;
      const report = checkCsvAgainstSchema(await readCsvFile(csvPath), schema, { ...(unitColumn ? { unitColumn } : {}) });
      if (opts.json) process.stdout.write(`${JSON.stringify({ csv: csvPath, schema: schemaPath, ...report })}\n`);
      else process.stdout.write(reportText(csvPath, schemaPath, report));
      if (!report.ok) {
        throw new FedtwinError('DATA_CHECK_FAILED', `${csvPath}: ${report.problems.length} problem(s) would stop the node (listed above)`, {
          hint: 'fix the export (or ask the consortium to declare what it needs), then run fedtwin data check again',
        });
      }
    });
}

function reportText(csv: string, schema: string, r: DataCheckReport): string {
  const lines = [
    `${r.ok ? 'data OK' : 'data NOT usable'}: ${csv}`,
    `  schema          ${schema}`,
    `  rows            ${r.rows} (${r.rowsKept} kept by the node)`,
    `  columns         ${r.columns} in the CSV; ${r.perColumn.length} declared found, ${r.missingColumns.length} missing, ${r.unknownColumns.length} undeclared`,
  ];
  if (r.unitColumn) lines.push(`  unit column     ${r.unitColumn.name}: ${r.unitColumn.present ? `${r.unitColumn.units} units` : 'missing'}`);
  const flagged = r.perColumn.filter((c) => c.empty + c.notNumber + c.notInteger + c.belowMin + c.aboveMax + c.undeclaredCategory > 0);
  if (flagged.length) {
    lines.push('  per column (empty, not a number, not an integer, below min, above max, undeclared category):');
    for (const c of flagged) lines.push(`    ${c.column}  ${c.empty}  ${c.notNumber}  ${c.notInteger}  ${c.belowMin}  ${c.aboveMax}  ${c.undeclaredCategory}`);
  }
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

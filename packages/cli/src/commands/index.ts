import type { Command } from 'commander';
import { registerDpCommands } from './dp.ts';
import { registerLedgerCommands } from './ledger.ts';
import { registerHeBench } from './bench-he.ts';
import { registerModelsBench } from './bench-models.ts';
import { registerDaemonCommands } from './daemons.ts';
import { registerKeysCommands } from './keys.ts';
import { registerSimCommand } from './sim.ts';
import { registerSchemaCommands } from './schema.ts';
import { registerConsortiumCommands } from './consortium.ts';
import { registerDataCommands } from './data.ts';
import { registerStatusCommand } from './status.ts';
import { registerGenerateCommand } from './generate.ts';

/** Each command group lives in its own file and registers itself here. */
export function registerCommands(program: Command): void {
  registerDaemonCommands(program);
  registerStatusCommand(program);
  registerKeysCommands(program);
  registerConsortiumCommands(program);
  registerSimCommand(program);
  registerGenerateCommand(program);
  registerSchemaCommands(program);
  registerDataCommands(program);
  registerDpCommands(program);
  registerLedgerCommands(program);
  const bench = program.command('bench').description('Benchmarks (figures printed beside their baselines from the same run)');
  registerHeBench(bench);
  registerModelsBench(bench);
}

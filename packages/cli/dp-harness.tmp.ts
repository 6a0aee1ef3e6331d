import { Command, CommanderError } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
import { registerDpCommands } from './src/commands/dp.ts';
const program = new Command('fedtwin').showHelpAfterError().exitOverride();
registerDpCommands(program);
try { await program.parseAsync(process.argv); process.exitCode = 0; }
catch (err) {
  if (err instanceof CommanderError) process.exitCode = (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') ? 0 : 2;
  else if (err instanceof FedtwinError) { process.stderr.write(`error [${err.code}]: ${err.message}\nhint: ${err.hint}\n`); process.exitCode = err.code.endsWith('_BAD_ARGUMENT') ? 2 : 1; }
  else { console.error(err); process.exitCode = 1; }
}

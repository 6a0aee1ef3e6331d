import { Command, CommanderError } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
import { registerCommands } from './commands/index.ts';

/** Exit codes: 0 ok, 1 failure at run time, 2 bad usage / bad arguments / bad config, 3 the consortium is not the one this member pinned. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_CONSORTIUM = 3;

// A key file others can read is a set-up error the operator fixes (chmod 600), like a bad config.
const USAGE_CODES = new Set(['CLI_BAD_ARGUMENT', 'CONFIG_INVALID', 'CONFIG_NOT_FOUND', 'CONFIG_PARSE', 'WIRE_IDENTITY_INSECURE_PERMISSIONS', 'CONSORTIUM_INVALID', 'CONSORTIUM_NOT_FOUND']);
// Refusals to take part in what the aggregator runs: the member's pinned manifest or privacy floor says no.
const CONSORTIUM_CODES = new Set(['CONSORTIUM_MISMATCH', 'CONSORTIUM_PRIVACY_TOO_WEAK']);

export function buildProgram(): Command {
  const program = new Command('fedtwin')
    .description('Federated, private, encrypted training of generative digital twin models')
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  return program;
}

/** Runs the CLI and returns the process exit code; never throws. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (err) {
    return reportError(err);
  }
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander already printed its message; help/version are not errors.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK;
    return EXIT_USAGE;
  }
  if (err instanceof FedtwinError) {
    process.stderr.write(`error [${err.code}]: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    if (CONSORTIUM_CODES.has(err.code)) return EXIT_CONSORTIUM;
    return USAGE_CODES.has(err.code) || err.code.endsWith('_BAD_ARGUMENT') ? EXIT_USAGE : EXIT_FAILURE;
  }
  process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT_FAILURE;
}

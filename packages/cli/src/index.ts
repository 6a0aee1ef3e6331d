import { Command, CommanderError } from 'commander';
import { FedtwinError } from '@fedtwin/errors';
import { registerCommands } from './commands/index.ts';
import { explainNetworkError } from './network-errors.ts';
import { CLI_VERSION } from './version.ts';

/** Exit codes: 0 ok, 1 failure at run time, 2 bad usage / bad arguments / bad config / data a node would refuse, 3 the consortium is not the one this member pinned. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_CONSORTIUM = 3;

// A key file others can read is a set-up error the operator fixes (chmod 600), like a bad config.
const USAGE_CODES = new Set(['CLI_BAD_ARGUMENT', 'HTTP_TOKEN_REQUIRED', 'HTTP_BAD_LISTEN', 'DATA_CHECK_FAILED', 'CONFIG_INVALID', 'CONFIG_NOT_FOUND', 'CONFIG_PARSE', 'WIRE_IDENTITY_INSECURE_PERMISSIONS', 'CONSORTIUM_INVALID', 'CONSORTIUM_NOT_FOUND']);
// Refusals to take part in what the aggregator runs: the member's pinned manifest or privacy floor says no.
const CONSORTIUM_CODES = new Set(['CONSORTIUM_MISMATCH', 'CONSORTIUM_PRIVACY_TOO_WEAK']);

export function buildProgram(): Command {
  const program = new Command('fedtwin')
    .description('Federated, private, encrypted training of generative digital twin models')
    .version(CLI_VERSION, '-V, --version', 'print the fedtwin version')
    .exitOverride();
  registerCommands(program);
  conciseUsageErrors(program);
  return program;
}

/**
 * A mistyped option prints commander's one line (with its "Did you mean …?") and where the help is, not the
 * whole help: the error would scroll out of sight behind it. Set on every command, each naming its own path.
 */
function conciseUsageErrors(cmd: Command): void {
  cmd.showHelpAfterError(`see ${commandPath(cmd)} --help`);
  for (const sub of cmd.commands) conciseUsageErrors(sub);
}

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
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

export function reportError(raw: unknown): number {
  if (raw instanceof CommanderError) {
    // commander already printed its message; help/version are not errors.
    if (raw.code === 'commander.helpDisplayed' || raw.code === 'commander.version' || raw.code === 'commander.help') return EXIT_OK;
    return EXIT_USAGE;
  }
  // libp2p's own errors ("Missing newline", "Encryption failed") say nothing an operator can act on.
  const err = explainNetworkError(raw);
  if (err instanceof FedtwinError) {
    process.stderr.write(`error [${err.code}]: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    if (CONSORTIUM_CODES.has(err.code)) return EXIT_CONSORTIUM;
    return USAGE_CODES.has(err.code) || err.code.endsWith('_BAD_ARGUMENT') ? EXIT_USAGE : EXIT_FAILURE;
  }
  process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT_FAILURE;
}

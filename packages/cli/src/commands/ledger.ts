import type { Command } from 'commander';

// Placeholder: filled in by the package that owns this command group.
export function registerLedgerCommands(_program: Command): void {}

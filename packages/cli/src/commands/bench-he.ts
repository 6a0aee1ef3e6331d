import type { Command } from 'commander';

// Placeholder: filled in by the package that owns this command group.
export function registerHeBench(_bench: Command): void {}

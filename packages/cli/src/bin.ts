#!/usr/bin/env node
// Entry point of the `fedtwin` command. Thin: parsing and exit codes here, work in the packages.
import { enableCompileCache } from 'node:module';

// Node's on-disk compile cache (its default folder under the OS temp dir, or NODE_COMPILE_CACHE; off with
// NODE_DISABLE_COMPILE_CACHE=1) before the rest is loaded: a daemon or CLI call then starts with ≈ 0.35 s
// less CPU (the type-stripped sources and libp2p/tfjs compiled once, not on every start).
enableCompileCache();
const { callerCwd } = await import('./caller-cwd.ts');
const { runCli } = await import('./index.ts');

// `npm run fedtwin -- node start --config node.yaml` runs this from the repository root (npm's doing): take
// relative paths from the folder the user typed the command in, as any other command does.
const cwd = callerCwd(process.env, process.cwd());
if (cwd !== process.cwd()) process.chdir(cwd);

// `fedtwin ledger export | head`: the reader leaving is not a failure. Stop quietly with 0, as
// coreutils do; any other stdout error is still fatal (rethrown, so it is not swallowed).
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const code = await runCli(process.argv);
// A failed command exits now: a half-started daemon (libp2p sockets, timers) must not keep the
// process alive after its error has been printed. Success drains normally.
if (code !== 0) process.exit(code);
process.exitCode = code;

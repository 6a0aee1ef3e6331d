#!/usr/bin/env node
// Entry point of the `fedtwin` command. Thin: parsing and exit codes here, work in the packages.
import { runCli } from './index.ts';

const code = await runCli(process.argv);
// A failed command exits now: a half-started daemon (libp2p sockets, timers) must not keep the
// process alive after its error has been printed. Success drains normally.
if (code !== 0) process.exit(code);
process.exitCode = code;

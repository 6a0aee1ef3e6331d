#!/usr/bin/env node
// Entry point of the `fedtwin` command. Thin: parsing and exit codes here, work in the packages.
import { runCli } from './index.ts';

process.exitCode = await runCli(process.argv);

import { statSync } from 'node:fs';

/**
 * The folder relative paths on the command line are taken from. npm runs a package script from the package's
 * root whatever folder it was typed in, and records that folder in INIT_CWD. Only a script that runs this CLI
 * (`npm run fedtwin`, `npm run sim`: npm_lifecycle_script names bin.ts) is redirected; under `npm test` or any
 * other script INIT_CWD is inherited by every process started, and a test that spawns the CLI in a folder of its
 * own means that folder. The daemons `fedtwin sim` starts inherit both variables and resolve like the sim.
 */
export function callerCwd(env: NodeJS.ProcessEnv, cwd: string): string {
  const init = env.INIT_CWD;
  if (!init || !/(^|[\s/])(bin\.ts|fedtwin)(\s|$)/.test(env.npm_lifecycle_script ?? '')) return cwd;
  try {
    return statSync(init).isDirectory() ? init : cwd;
  } catch {
    return cwd; // the folder is gone: the paths could not resolve against it either
  }
}

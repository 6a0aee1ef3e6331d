import { readFileSync } from 'node:fs';

/** The CLI's version: packages/cli/package.json's, read once (the package is run from source, not bundled). */
export const CLI_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

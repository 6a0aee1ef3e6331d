// Fails fast, with a fix, when an npm script runs on a Node older than the one the project ships.
// npm puts node_modules/.bin first on PATH, so `node` here is the project's own Node 24.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(`fedtwin needs Node >= 22 (got ${process.version} at ${process.execPath}).\n` +
    'Hint: run `npm ci` first; it installs the project\'s own Node 24 into node_modules/.bin.');
  process.exit(1);
}

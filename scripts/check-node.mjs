// Fails fast, with a fix, when an npm script runs on a Node older than the one the project ships. Plain
// JavaScript on purpose: it must run (and say why) on exactly the old Node that cannot run TypeScript.
// npm puts node_modules/.bin first on PATH, so `node` here is the project's own Node 24 once it is installed;
// `npm ci --ignore-scripts` skips that install and leaves the system's node.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(`fedtwin needs Node >= 22, this is ${process.version} (${process.execPath}): run \`npm ci\` without --ignore-scripts, which installs the project's own Node 24 into node_modules/.bin.`);
  process.exit(1);
}

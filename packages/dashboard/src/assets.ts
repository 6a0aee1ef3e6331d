import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const staticDir = fileURLToPath(new URL('../static/', import.meta.url));

/**
 * The page and its scripts: ours from static/, uPlot from node_modules (installed from npm with the rest; the
 * dashboard loads nothing from the internet). A fixed table, so no request path ever reaches the file system.
 */
const ASSETS: Record<string, { file: () => string; contentType: string }> = {
  '/': { file: () => `${staticDir}index.html`, contentType: 'text/html; charset=utf-8' },
  '/app.js': { file: () => `${staticDir}app.js`, contentType: 'text/javascript; charset=utf-8' },
  '/style.css': { file: () => `${staticDir}style.css`, contentType: 'text/css; charset=utf-8' },
  '/vendor/uPlot.iife.min.js': { file: () => require.resolve('uplot/dist/uPlot.iife.min.js'), contentType: 'text/javascript; charset=utf-8' },
  '/vendor/uPlot.min.css': { file: () => require.resolve('uplot/dist/uPlot.min.css'), contentType: 'text/css; charset=utf-8' },
};

const cache = new Map<string, Buffer>();

export async function staticAsset(path: string): Promise<{ contentType: string; body: Buffer } | undefined> {
  const a = ASSETS[path === '/index.html' ? '/' : path];
  if (!a) return undefined;
  let body = cache.get(path);
  if (!body) {
    body = await readFile(a.file());
    cache.set(path, body);
  }
  return { contentType: a.contentType, body };
}

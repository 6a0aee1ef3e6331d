// Debian's Chromium driven by playwright-core, for the dashboards' browser tests (its own browser download cannot
// work here). Without Chromium the tests skip, saying so. Screenshots also go to .ci/screenshots/ (gitignored) when
// that folder can be made.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';

export const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => !!p && existsSync(p));

/** Says once, for `file`, that its browser tests are skipped. */
export function warnIfNoChromium(file: string): void {
  if (!CHROMIUM) console.warn(`${file}: no Chromium at /usr/bin/chromium (apt-get install -y chromium, or set CHROMIUM_PATH): its browser tests are skipped`);
}

export const CI_SHOTS = fileURLToPath(new URL('../../.ci/screenshots/', import.meta.url));

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM!, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 30_000 });
}

/** A full-page screenshot into each of `dirs` (which exist) and into .ci/screenshots/ when it can be made. */
export async function saveScreenshot(page: Page, name: string, dirs: readonly string[] = []): Promise<void> {
  const png = await page.screenshot({ fullPage: true });
  for (const dir of dirs) await writeFile(join(dir, name), png);
  try {
    await mkdir(CI_SHOTS, { recursive: true });
    await writeFile(join(CI_SHOTS, name), png);
  } catch {
    // a read-only checkout: the assertions still ran
  }
}

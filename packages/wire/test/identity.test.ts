import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat, writeFile, readdir, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { isFedtwinError } from '@fedtwin/errors';
import { generateIdentity, loadIdentity, peerIdOf, saveIdentity, WIRE_CODES } from '../src/index.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fedtwin-wire-id-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    if (isFedtwinError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe('identity', () => {
  it('round-trips a key through a 0600 file, atomically, keeping the peer ID', async () => {
    const key = await generateIdentity();
    const file = join(dir, 'node.key');
    await saveIdentity(file, key);
    const st = await stat(file);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.size).toBeLessThan(100);
    // No temp file left behind.
    expect(await readdir(dir)).toEqual(['node.key']);
    const back = await loadIdentity(file);
    expect(back.type).toBe('Ed25519');
    expect(peerIdOf(back)).toBe(peerIdOf(key));
    expect(peerIdOf(key)).toMatch(/^12D3KooW/);
    expect(back.equals(key)).toBe(true);

    // Overwriting replaces the identity in one rename.
    const key2 = await generateIdentity();
    await saveIdentity(file, key2);
    expect(peerIdOf(await loadIdentity(file))).toBe(peerIdOf(key2));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('creates a missing parent directory', async () => {
    const file = join(dir, 'a', 'b', 'node.key');
    await saveIdentity(file, await generateIdentity());
    expect((await stat(file)).isFile()).toBe(true);
  });

  it('reports a missing file as WIRE_IDENTITY_MISSING', async () => {
    expect(await codeOf(loadIdentity(join(dir, 'nope.key')))).toBe(WIRE_CODES.IDENTITY_MISSING);
  });

  it('reports garbage, truncation and oversize as WIRE_IDENTITY_CORRUPT', async () => {
    const file = join(dir, 'bad.key');
    await writeFile(file, 'this is not a key', { mode: 0o600 });
    expect(await codeOf(loadIdentity(file))).toBe(WIRE_CODES.IDENTITY_CORRUPT);
    const good = privateKeyToProtobuf(await generateIdentity());
    await writeFile(file, good.subarray(0, good.byteLength - 10));
    expect(await codeOf(loadIdentity(file))).toBe(WIRE_CODES.IDENTITY_CORRUPT);
    await writeFile(file, new Uint8Array(10_000));
    expect(await codeOf(loadIdentity(file))).toBe(WIRE_CODES.IDENTITY_CORRUPT);
  });

  it('reports a non-Ed25519 key as WIRE_IDENTITY_WRONG_TYPE, on load and on save', async () => {
    const secp = await generateKeyPair('secp256k1');
    const file = join(dir, 'secp.key');
    await writeFile(file, privateKeyToProtobuf(secp), { mode: 0o600 });
    expect(await codeOf(loadIdentity(file))).toBe(WIRE_CODES.IDENTITY_WRONG_TYPE);
    expect(await codeOf(saveIdentity(join(dir, 'x.key'), secp))).toBe(WIRE_CODES.IDENTITY_WRONG_TYPE);
  });

  it('reports a directory or an unreadable file as WIRE_IDENTITY_UNREADABLE', async () => {
    const sub = join(dir, 'sub');
    await mkdir(sub);
    expect(await codeOf(loadIdentity(sub))).toBe(WIRE_CODES.IDENTITY_UNREADABLE);
    const file = join(dir, 'locked.key');
    await saveIdentity(file, await generateIdentity());
    await chmod(file, 0o000);
    // root ignores file modes, so only assert where permissions actually bite.
    if (process.getuid?.() !== 0) expect(await codeOf(loadIdentity(file))).toBe(WIRE_CODES.IDENTITY_UNREADABLE);
  });

  it('refuses a key file that group or others can read or write, naming chmod 600 in the hint', async () => {
    const file = join(dir, 'node.key');
    await saveIdentity(file, await generateIdentity());
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602, 0o610]) {
      await chmod(file, mode);
      const err = await loadIdentity(file).then(() => undefined, (e: unknown) => e);
      expect(isFedtwinError(err) && err.code, mode.toString(8)).toBe('WIRE_IDENTITY_INSECURE_PERMISSIONS');
      expect(isFedtwinError(err) && err.hint).toContain(`chmod 600 ${file}`);
      expect(isFedtwinError(err) && err.details).toMatchObject({ mode });
    }
    // Owner-only modes load; 0400 (read-only for the owner) is as safe as 0600.
    for (const mode of [0o600, 0o400]) {
      await chmod(file, mode);
      expect((await loadIdentity(file)).type).toBe('Ed25519');
    }
  });

  it('reports an unwritable location as WIRE_IDENTITY_WRITE_FAILED', async () => {
    const blocker = join(dir, 'file');
    await writeFile(blocker, 'x');
    expect(await codeOf(saveIdentity(join(blocker, 'node.key'), await generateIdentity()))).toBe(WIRE_CODES.IDENTITY_WRITE_FAILED);
  });
});

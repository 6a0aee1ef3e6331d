import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const KEYS = ['scheme', 'bytesPerValue', 'ratioToFloat32', 'encryptMsPerMillion', 'aggregateMsPerUpdatePerMillion', 'decryptMsPerMillion', 'maxAbsError'];

describe('fedtwin bench he', () => {
  it('prints one JSON object with both schemes and the documented keys', async () => {
    const { stdout } = await run(process.execPath, [bin, 'bench', 'he', '--values', '20000', '--updates', '3', '--json'], { maxBuffer: 1 << 20 });
    const r = JSON.parse(stdout) as Record<string, unknown>;
    expect(Object.keys(r).sort()).toEqual(['baseline', 'fedtwin', 'secagg', 'singleKey', 'updates', 'values']);
    expect(r.values).toBe(20000);
    expect(r.updates).toBe(3);
    const GUARDS = ['collusionThreshold', 'dropoutTolerance'];
    for (const side of ['fedtwin', 'baseline', 'singleKey', 'secagg'] as const) {
      const f = r[side] as Record<string, unknown>;
      const extra = side === 'baseline' ? [] : side === 'fedtwin' ? [...GUARDS, 'mode'] : GUARDS;
      expect(Object.keys(f).sort()).toEqual([...KEYS, ...extra].sort());
      expect(typeof f.scheme).toBe('string');
      for (const k of KEYS.slice(1)) expect(Number.isFinite(f[k])).toBe(true);
      expect(f.ratioToFloat32).toBeCloseTo((f.bytesPerValue as number) / 4, 2);
    }
    // The default scheme's figures with what it withstands (issue 16): single key, the aggregator plus one
    // member reads every update; secagg over 3 members, the default threshold ⌊3/2⌋ + 1 = 2, one may drop.
    const fed = r.fedtwin as Record<string, unknown>;
    const { DEFAULT_SECURE_AGGREGATION_SCHEME } = await import('@fedtwin/consortium');
    expect(fed.mode).toBe(DEFAULT_SECURE_AGGREGATION_SCHEME);
    const { mode: _, ...fedFigures } = fed;
    expect(fedFigures).toEqual(r[DEFAULT_SECURE_AGGREGATION_SCHEME === 'secagg' ? 'secagg' : 'singleKey']);
    expect(r.singleKey).toMatchObject({ collusionThreshold: 1, dropoutTolerance: 2 });
    const masked = r.secagg as Record<string, number>;
    expect(masked).toMatchObject({ collusionThreshold: 2, dropoutTolerance: 1 });
    // One member's upload: 4 bytes per value plus its keys, shares and reveal (a few hundred bytes).
    expect(masked.bytesPerValue).toBeGreaterThanOrEqual(4);
    expect(masked.bytesPerValue).toBeLessThan(4.2);
    expect(masked.maxAbsError).toBeLessThanOrEqual(3 / 32767);
    const ours = r.singleKey as Record<string, number>;
    const base = r.baseline as Record<string, number>;
    // Sizes are deterministic: 5 chunks × (52 + 4096·40/8) + 84 header bytes + one 32-byte (member, nonce) row for 20,000 values (c0 only; c1 is the round's a).
    expect(ours.bytesPerValue).toBeCloseTo((84 + 32 + 5 * (52 + 20480)) / 20000, 3);
    expect(base.bytesPerValue).toBeGreaterThan(8 * ours.bytesPerValue);
    // Quantization error of a sum of 3 updates is at most 3 / scale (scale = 32767 for clip 1).
    expect(ours.maxAbsError).toBeLessThanOrEqual(3 / 32767);
    expect(base.maxAbsError).toBeLessThan(1e-4);
  });

  it('exits 2 with a message on a bad argument', async () => {
    const err = await run(process.execPath, [bin, 'bench', 'he', '--values', '0', '--json']).catch((e: { code: number; stderr: string; stdout: string }) => e);
    expect((err as { code: number }).code).toBe(2);
    expect((err as { stderr: string }).stderr).toContain('--values');
    expect((err as { stdout: string }).stdout).toBe('');
  });
});

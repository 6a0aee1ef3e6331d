import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TaskResponse, UpdateHeader, TableSchemaMessage, bytesToF32, f32ToBytes } from '../src/index.ts';

describe('protocol', () => {
  it('float32 body encoding round-trips bit-exactly', () => {
    fc.assert(fc.property(fc.float32Array({ maxLength: 64 }), (a) => {
      const back = bytesToF32(f32ToBytes(a));
      expect(back.length).toBe(a.length);
      for (let i = 0; i < a.length; i++) expect(Object.is(back[i], a[i])).toBe(true);
    }));
  });

  it('rejects malformed messages: unknown fields, wrong types, out-of-range values', () => {
    const ok = { round: 1, baseVersion: 0, baseHash: 'a'.repeat(64), weight: 1, values: 10, encoding: 'f32le', loss: 0.1, trainSeconds: 1, privacy: [], entry: '' };
    expect(UpdateHeader.safeParse(ok).success).toBe(true);
    expect(UpdateHeader.safeParse({ ...ok, extra: 1 }).success).toBe(false);
    expect(UpdateHeader.safeParse({ ...ok, round: 0 }).success).toBe(false);
    expect(UpdateHeader.safeParse({ ...ok, baseHash: 'XYZ' }).success).toBe(false);
    expect(UpdateHeader.safeParse({ ...ok, loss: Infinity }).success).toBe(false);
    expect(UpdateHeader.safeParse({ ...ok, values: 2 ** 40 }).success).toBe(false);
    expect(TaskResponse.safeParse({ status: 'open', round: 1 }).success).toBe(false);
    expect(TableSchemaMessage.safeParse({ target: 'y', columns: [{ name: 'y', kind: 'numeric' }] }).success).toBe(false);
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FedtwinError } from '@fedtwin/errors';
import { errorOf } from './error-of.ts';
import { formatNumber, parseCsv, readCsvFile, toCsv } from '../src/csv.ts';

describe('parseCsv', () => {
  it('parses plain rows, quotes, escaped quotes, embedded line breaks, CRLF and a BOM', () => {
    const text = '\uFEFFname,note,n\r\n"Smith, J","said ""hi""",1\r\n plain ,"two\nlines",2\r\n';
    const { header, rows } = parseCsv(text);
    expect(header).toEqual(['name', 'note', 'n']);
    expect(rows).toEqual([
      ['Smith, J', 'said "hi"', '1'],
      [' plain ', 'two\nlines', '2'],
    ]);
  });

  it('accepts bytes, a missing final newline, empty fields and trailing blank lines', () => {
    const bytes = new TextEncoder().encode('a,b,c\n1,,3\n,,\n4,5,6\n\n\n');
    expect(parseCsv(bytes).rows).toEqual([
      ['1', '', '3'],
      ['', '', ''],
      ['4', '5', '6'],
    ]);
    expect(parseCsv('a,b\n1,2').rows).toEqual([['1', '2']]);
    expect(parseCsv('a,b\n1,').rows).toEqual([['1', '']]);
    expect(parseCsv('a,b\n"",""').rows).toEqual([['', '']]);
  });

  it('reports an unterminated quote at the line where the field starts', () => {
    const e = errorOf(() => parseCsv('a,b\n1,2\n3,"oops\n4,5\n'));
    expect(e.code).toBe('DATA_CSV_MALFORMED');
    expect(e.message).toMatch(/:3: unterminated/);
    expect(e.details).toEqual({ line: 3 });
  });

  it('reports ragged rows with the physical line number (after multi-line fields)', () => {
    const e = errorOf(() => parseCsv('a,b\n"x\ny",2\n1,2,3\n'));
    expect(e.code).toBe('DATA_CSV_MALFORMED');
    expect(e.details).toEqual({ line: 4 });
    expect(e.message).toContain('3 fields, header has 2');
    expect(errorOf(() => parseCsv('a,b\n1\n')).details).toEqual({ line: 2 });
  });

  it('rejects stray quotes, text after a closing quote, bare CR, bad UTF-8, bad headers', () => {
    expect(errorOf(() => parseCsv('a,b\n1,2"3\n')).code).toBe('DATA_CSV_MALFORMED');
    expect(errorOf(() => parseCsv('a,b\n"1"x,2\n')).message).toContain('after closing quote');
    expect(errorOf(() => parseCsv('a,b\r1,2\n')).message).toContain('bare CR');
    expect(errorOf(() => parseCsv(new Uint8Array([0x61, 0x0a, 0xff, 0xfe, 0x0a]))).message).toContain('UTF-8');
    expect(errorOf(() => parseCsv('a,a\n1,2\n')).message).toContain('duplicate column name "a"');
    expect(errorOf(() => parseCsv('a,\n1,2\n')).message).toContain('empty name');
  });

  it('throws DATA_EMPTY for no input or a header without rows', () => {
    expect(errorOf(() => parseCsv('')).code).toBe('DATA_EMPTY');
    expect(errorOf(() => parseCsv('\uFEFF\n\n')).code).toBe('DATA_EMPTY');
    expect(errorOf(() => parseCsv('a,b\n')).code).toBe('DATA_EMPTY');
  });

  it('enforces byte, row and column caps with DATA_TOO_LARGE', () => {
    expect(errorOf(() => parseCsv('a,b\n1,2\n', { maxBytes: 4 })).code).toBe('DATA_TOO_LARGE');
    expect(errorOf(() => parseCsv(new Uint8Array(10), { maxBytes: 9 })).code).toBe('DATA_TOO_LARGE');
    expect(errorOf(() => parseCsv('a\n1\n2\n3\n', { maxRows: 2 })).code).toBe('DATA_TOO_LARGE');
    expect(parseCsv('a\n1\n2\n', { maxRows: 2 }).rows).toHaveLength(2);
    expect(errorOf(() => parseCsv('a,b,c\n1,2,3\n', { maxColumns: 2 })).code).toBe('DATA_TOO_LARGE');
    expect(errorOf(() => parseCsv('a\n1\n', { maxRows: 0 })).code).toBe('DATA_BAD_ARGUMENT');
  });
});

describe('toCsv / formatNumber', () => {
  it('quotes only when needed and writes plain decimals', () => {
    expect(toCsv(['a', 'b,c'], [['x"y', 1.5], ['line\nbreak', 1e-7], [' pad', -0]])).toBe(
      'a,"b,c"\n"x""y",1.5\n"line\nbreak",0.0000001\n" pad",0\n',
    );
    expect(formatNumber(2.5, 3)).toBe('2.5');
    expect(formatNumber(2.0004, 3)).toBe('2');
    expect(formatNumber(-0.0001, 2)).toBe('0');
    expect(formatNumber(123456789012, 0)).toBe('123456789012');
    expect(() => formatNumber(Number.NaN)).toThrow(/non-finite/);
    expect(() => toCsv(['a', 'b'], [['1']])).toThrow(/row 1 has 1 fields/);
  });

  it('round-trips arbitrary text through toCsv → parseCsv', () => {
    const field = fc.string({ unit: fc.constantFrom('a', 'b', ' ', ',', '"', '\n', '\r', 'é', '0') });
    const name = fc.string({ unit: fc.constantFrom('x', 'y', 'z', ',', '"'), minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }).chain((w) =>
          fc.tuple(fc.uniqueArray(name, { minLength: w, maxLength: w }), fc.array(fc.array(field, { minLength: w, maxLength: w }), { minLength: 1, maxLength: 6 })),
        ),
        ([header, rows]) => {
          const parsed = parseCsv(toCsv(header, rows));
          expect(parsed.header).toEqual(header);
          expect(parsed.rows).toEqual(rows);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('parseCsv on arbitrary input', () => {
  it('either parses into equal-width rows or throws a FedtwinError (never anything else)', () => {
    const text = fc.string({ unit: fc.constantFrom('a', '1', ',', '"', '\n', '\r', ' ', '\uFEFF'), maxLength: 40 });
    fc.assert(
      fc.property(text, (t) => {
        try {
          const { header, rows } = parseCsv(t);
          expect(rows.length).toBeGreaterThan(0);
          for (const r of rows) expect(r).toHaveLength(header.length);
        } catch (e) {
          expect(e).toBeInstanceOf(FedtwinError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('readCsvFile', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('reads a file, names it in errors and checks the size before reading', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-csv-'));
    dirs.push(dir);
    const p = join(dir, 'x.csv');
    await writeFile(p, 'a,b\n1,2\n3\n');
    await expect(readCsvFile(p)).rejects.toMatchObject({ code: 'DATA_CSV_MALFORMED', message: expect.stringContaining(`${p}:3`) });
    await expect(readCsvFile(p, { maxBytes: 5 })).rejects.toMatchObject({ code: 'DATA_TOO_LARGE' });
    await writeFile(p, 'a,b\n1,2\n');
    expect((await readCsvFile(p)).rows).toEqual([['1', '2']]);
    await expect(readCsvFile(join(dir, 'nope.csv'))).rejects.toMatchObject({ code: 'DATA_NOT_FOUND' });
  });
});

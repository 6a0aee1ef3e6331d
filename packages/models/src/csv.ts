// Strict RFC 4180 CSV: quoted fields, "" escapes, CRLF or LF line ends, optional UTF-8 BOM,
// every row as wide as the header. Sizes are capped before anything large is allocated.
import { readFile, stat } from 'node:fs/promises';
import { FedtwinError } from '@fedtwin/errors';

export interface CsvLimits {
  /** Max input size in bytes (UTF-8). Default 256 MiB. */
  maxBytes?: number;
  /** Max data rows (header excluded). Default 10,000,000. */
  maxRows?: number;
  /** Max columns. Default 10,000. */
  maxColumns?: number;
}

export interface ParsedCsv {
  header: string[];
  /** Data rows; every row has header.length fields. */
  rows: string[][];
}

export const DEFAULT_CSV_LIMITS: Required<CsvLimits> = {
  maxBytes: 256 * 1024 * 1024,
  maxRows: 10_000_000,
  maxColumns: 10_000,
};

function limitsOf(opts: CsvLimits | undefined): Required<CsvLimits> {
  const l = { ...DEFAULT_CSV_LIMITS, ...(opts ?? {}) };
  for (const k of ['maxBytes', 'maxRows', 'maxColumns'] as const) {
    if (!Number.isSafeInteger(l[k]) || l[k] <= 0) {
      throw new FedtwinError('DATA_BAD_ARGUMENT', `CSV limit ${k} must be a positive integer, got ${String(l[k])}`);
    }
  }
  return l;
}

function tooLarge(what: string, limit: number, source: string): FedtwinError {
  return new FedtwinError('DATA_TOO_LARGE', `${source}: more than ${limit} ${what}`, {
    hint: `Raise the limit (CsvLimits.${what === 'bytes' ? 'maxBytes' : what === 'rows' ? 'maxRows' : 'maxColumns'}) if this input is expected`,
    details: { limit },
  });
}

function malformed(source: string, line: number, msg: string, hint?: string): FedtwinError {
  return new FedtwinError('DATA_CSV_MALFORMED', `${source}:${line}: ${msg}`, {
    hint: hint ?? 'Fix the CSV (RFC 4180: comma separated, fields with commas, quotes or line breaks in double quotes, "" for a quote)',
    details: { line },
  });
}

/**
 * Parse CSV text or UTF-8 bytes. The first record is the header. Throws `DATA_EMPTY` (no header
 * or no data rows), `DATA_TOO_LARGE`, `DATA_CSV_MALFORMED` (with 1-based line numbers).
 * A final line end is optional; empty lines at the very end are ignored.
 */
export function parseCsv(input: string | Uint8Array, opts: CsvLimits & { source?: string } = {}): ParsedCsv {
  const lim = limitsOf(opts);
  const source = opts.source ?? 'csv';
  let text: string;
  if (typeof input === 'string') {
    // A JS string is at most 3 UTF-8 bytes per UTF-16 unit; check the cheap bound first.
    if (input.length > lim.maxBytes && Buffer.byteLength(input, 'utf8') > lim.maxBytes) throw tooLarge('bytes', lim.maxBytes, source);
    text = input;
  } else {
    if (input.byteLength > lim.maxBytes) throw tooLarge('bytes', lim.maxBytes, source);
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch (e) {
      throw new FedtwinError('DATA_CSV_MALFORMED', `${source}: not valid UTF-8`, { hint: 'Save the file as UTF-8', cause: e });
    }
  }
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  // Drop trailing line ends (and only those) so "a,b\n\n" does not yield a ragged empty row.
  let end = n;
  while (end > pos && (text.charCodeAt(end - 1) === 10 || text.charCodeAt(end - 1) === 13)) end--;
  if (end === pos) throw new FedtwinError('DATA_EMPTY', `${source}: no header and no rows`, { hint: 'The first line must be a header of column names' });
  // Only line ends after the last other character are cut, so no quoted field loses content.

  const rows: string[][] = [];
  let header: string[] | undefined;
  let width = -1;
  let line = 1; // physical line of the current position
  let recordLine = 1; // line where the current record starts
  let row: string[] = [];

  const pushRow = (): void => {
    if (header === undefined) {
      header = row;
      width = row.length;
    } else {
      if (row.length !== width) {
        throw malformed(source, recordLine, `row has ${row.length} fields, header has ${width}`, 'Every row must have as many fields as the header; quote fields that contain commas');
      }
      if (rows.length >= lim.maxRows) throw tooLarge('rows', lim.maxRows, source);
      rows.push(row);
    }
    row = [];
  };

  while (pos <= end) {
    // Start of a field.
    let field: string;
    if (pos < end && text.charCodeAt(pos) === 34 /* " */) {
      const startLine = line;
      pos++;
      let buf = '';
      let chunkStart = pos;
      for (;;) {
        const q = text.indexOf('"', pos);
        if (q === -1 || q >= end) throw malformed(source, startLine, 'unterminated quoted field', 'Close the quote, or escape a quote inside a field as ""');
        // count line breaks inside the quoted part for accurate line numbers
        for (let i = pos; i < q; i++) if (text.charCodeAt(i) === 10) line++;
        if (text.charCodeAt(q + 1) === 34) {
          buf += text.slice(chunkStart, q + 1);
          pos = q + 2;
          chunkStart = pos;
          continue;
        }
        buf += text.slice(chunkStart, q);
        pos = q + 1;
        break;
      }
      field = buf;
      if (pos < end) {
        const c = text.charCodeAt(pos);
        if (c !== 44 && c !== 10 && c !== 13) throw malformed(source, line, 'unexpected character after closing quote');
      }
    } else {
      // Unquoted field: up to the next comma or line end; no quotes allowed inside.
      let i = pos;
      while (i < end) {
        const c = text.charCodeAt(i);
        if (c === 44 || c === 10 || c === 13) break;
        if (c === 34) throw malformed(source, line, 'quote inside an unquoted field', 'Quote the whole field and write a quote inside it as ""');
        i++;
      }
      field = text.slice(pos, i);
      pos = i;
    }
    row.push(field);
    if (row.length > lim.maxColumns) throw tooLarge('columns', lim.maxColumns, source);
    if (pos >= end) {
      pushRow();
      break;
    }
    const c = text.charCodeAt(pos);
    if (c === 44) {
      pos++;
      if (pos === end) {
        // "a,b," at the end: one more empty field
        row.push('');
        pushRow();
        break;
      }
      continue;
    }
    if (c === 13) {
      if (text.charCodeAt(pos + 1) !== 10) throw malformed(source, line, 'bare CR line end', 'Use LF or CRLF line ends');
      pos++;
    }
    // LF
    pos++;
    line++;
    pushRow();
    recordLine = line;
    if (pos >= end) break;
  }

  if (header === undefined) throw new FedtwinError('DATA_EMPTY', `${source}: no header`);
  const hdr: string[] = header;
  const seen = new Set<string>();
  for (let i = 0; i < hdr.length; i++) {
    const h = hdr[i];
    if (h.trim() === '') throw malformed(source, 1, `column ${i + 1} has an empty name`, 'Give every column a name in the header');
    if (seen.has(h)) throw malformed(source, 1, `duplicate column name "${h}"`, 'Column names must be unique');
    seen.add(h);
  }
  if (rows.length === 0) throw new FedtwinError('DATA_EMPTY', `${source}: header but no data rows`, { hint: 'Add at least one data row' });
  return { header: hdr, rows };
}

/** Read and parse a CSV file; checks the size on disk before reading. */
export async function readCsvFile(path: string, opts: CsvLimits = {}): Promise<ParsedCsv> {
  const lim = limitsOf(opts);
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    throw new FedtwinError('DATA_NOT_FOUND', `cannot read ${path}: ${(e as Error).message}`, { hint: 'Check the path', cause: e });
  }
  if (size > lim.maxBytes) throw tooLarge('bytes', lim.maxBytes, path);
  const bytes = await readFile(path);
  return parseCsv(bytes, { ...lim, source: path });
}

function needsQuotes(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 44 || c === 34 || c === 10 || c === 13) return true;
  }
  // Leading/trailing spaces survive unquoted in RFC 4180, but many tools trim them; quote to be safe.
  return s.length > 0 && (s.charCodeAt(0) === 32 || s.charCodeAt(s.length - 1) === 32);
}

function cell(v: string | number | null): string {
  // null is a missing cell: an empty field (tableToCsv writes a schema's own missing spelling).
  if (v === null) return '';
  const s = typeof v === 'number' ? formatNumber(v) : v;
  return needsQuotes(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Plain decimal (never exponent notation), shortest round-trip form, optionally rounded to `decimals`. */
export function formatNumber(v: number, decimals?: number): string {
  if (!Number.isFinite(v)) throw new FedtwinError('DATA_BAD_VALUE', `cannot write non-finite number ${v} to CSV`);
  let s: string;
  if (decimals !== undefined) {
    s = v.toFixed(decimals);
    if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  } else {
    s = String(v);
    if (/e/i.test(s)) {
      // Expand exponent form; toFixed(20) can still round, so use up to 20 digits then trim.
      s = Math.abs(v) >= 1e21 ? BigInt(Math.round(v)).toString() : v.toFixed(20).replace(/0+$/, '').replace(/\.$/, '');
    }
  }
  if (/^-0(\.0*)?$/.test(s)) s = '0';
  return s;
}

/** Write CSV (LF line ends, trailing LF). Fields are quoted only when needed. */
export function toCsv(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null>>): string {
  if (header.length === 0) throw new FedtwinError('DATA_BAD_ARGUMENT', 'toCsv needs at least one column');
  const out: string[] = [header.length === 1 && header[0] === '' ? '""' : header.map(cell).join(',')];
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    if (row.length !== header.length) {
      throw new FedtwinError('DATA_BAD_ARGUMENT', `row ${r + 1} has ${row.length} fields, header has ${header.length}`);
    }
    // A lone empty field would be a blank line, which readers (this one included) skip at the end.
    out.push(row.length === 1 && row[0] === '' ? '""' : row.map(cell).join(','));
  }
  return out.join('\n') + '\n';
}

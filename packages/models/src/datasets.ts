// The seven public medical data sets shipped in the repository's data/ directory, and loading of
// any CSV file by path. Built-ins are checked against their sha256 on every load.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FedtwinError } from '@fedtwin/errors';
import type { Table, TableSchema } from './types.ts';
import { DEFAULT_CSV_LIMITS, parseCsv, readCsvFile } from './csv.ts';
import type { CsvLimits } from './csv.ts';
import { inferSchema, parseNumber, tableFromCsv } from './schema.ts';
import type { LoadedTable, TableFromCsvOptions } from './schema.ts';

export type BuiltinDatasetName =
  | 'breast_cancer_wdbc' | 'diabetes_efron' | 'pima_diabetes' | 'pima_diabetes_na' | 'lung_ncctg' | 'baby_ecg_hr' | 'ecg_mitbih208_360hz';

/** A numeric column replaced by classes: value ≤ edges[0] → labels[0], ≤ edges[1] → labels[1], … else the last label. */
export interface Binning {
  column: string;
  into: string;
  edges: number[];
  labels: string[];
}

export interface BuiltinDataset {
  name: BuiltinDatasetName;
  file: string;
  sha256: string;
  rows: number;
  columns: number;
  /** Class column used when none is given; undefined for the unlabelled signal. */
  defaultTarget: string | undefined;
  /** Applied on load unless `raw: true` (a regression target turned into classes). */
  binning?: Binning;
  description: string;
  license: string;
}

export const BUILTIN_DATASETS: readonly BuiltinDataset[] = [
  {
    name: 'breast_cancer_wdbc',
    file: 'breast_cancer_wdbc.csv',
    sha256: '1f573a6153eb57b183b3bb3e49cc79e0f37e5e105d8337f9c7eb75b5fb04d347',
    rows: 569,
    columns: 31,
    defaultTarget: 'diagnosis',
    description: 'Breast Cancer Wisconsin (Diagnostic): 30 nucleus features; diagnosis 0 = malignant, 1 = benign',
    license: 'BSD-3-Clause (scikit-learn)',
  },
  {
    name: 'diabetes_efron',
    file: 'diabetes_efron.csv',
    sha256: '2d9516499b8b56e76cf361824b4608b0bef572b03e561ba3410ca4b4ce37b5d4',
    rows: 442,
    columns: 11,
    defaultTarget: 'progression_class',
    // Tertiles of the 442 public values (147 / 147 / 148 rows), fixed here so every site bins alike.
    binning: { column: 'progression', into: 'progression_class', edges: [99, 183], labels: ['q1', 'q2', 'q3'] },
    description: 'Efron et al. diabetes: 10 baseline variables; disease progression after one year (binned into tertiles q1 ≤ 99 < q2 ≤ 183 < q3)',
    license: 'BSD-3-Clause (scikit-learn)',
  },
  {
    name: 'pima_diabetes',
    file: 'pima_diabetes.csv',
    sha256: 'd579e2243fd8bff59098eafc42ac88c80c1e90785d9f53f9285732c3d3d5e591',
    rows: 768,
    columns: 9,
    defaultTarget: 'diabetes',
    description: 'Pima Indians Diabetes (mlbench PimaIndiansDiabetes): 8 measurements; diabetes pos/neg',
    license: 'GPL-2 (mlbench)',
  },
  {
    name: 'pima_diabetes_na',
    file: 'pima_diabetes_na.csv',
    sha256: 'faaf583f3fe15dc4028f6698775f52b749083093bd0387535ea19e368887d66a',
    rows: 768,
    columns: 9,
    defaultTarget: 'diabetes',
    description: 'Pima Indians Diabetes with the impossible zeros as empty cells (mlbench PimaIndiansDiabetes2): 652 missing cells in 5 columns; diabetes pos/neg',
    license: 'GPL-2 (mlbench)',
  },
  {
    name: 'lung_ncctg',
    file: 'lung_ncctg.csv',
    sha256: '0ac31bd0ce8a38c4c116db089c281659a8c244266267847f7540d6e2eea9a319',
    rows: 228,
    columns: 10,
    defaultTarget: 'status',
    description: 'NCCTG advanced lung cancer (R survival::lung): survival, ECOG/Karnofsky scores, meals, weight loss; 67 missing cells in 6 columns; status 1 = censored, 2 = dead',
    license: 'GPL-2 / LGPL (>= 2) (survival)',
  },
  {
    name: 'baby_ecg_hr',
    file: 'baby_ecg_hr.csv',
    sha256: 'c7d76a97af22895fc147fdfc86e344e070a599296feb06ebdf6e42a81586d120',
    rows: 2048,
    columns: 3,
    defaultTarget: 'sleep_state',
    description: 'Infant heart rate every 16 s with expert-scored sleep state 1–4 (wavethresh BabyECG/BabySS)',
    license: 'GPL-2+ (wavethresh)',
  },
  {
    name: 'ecg_mitbih208_360hz',
    file: 'ecg_mitbih208_360hz.csv',
    sha256: 'cb8285933a7e39a3def29771510e33c0dc76354969188532278dd8a1d7d6c50f',
    rows: 108000,
    columns: 2,
    defaultTarget: undefined,
    description: 'MIT-BIH record 208, lead MLII, 5 min at 360 Hz (t_seconds, mv); unlabelled signal',
    license: 'BSD-3-clause (SciPy); ODC-By 1.0 (PhysioNet)',
  },
];

/** The repository's data/ directory, found relative to this file (packages/models/src → ../../../data). */
export function defaultDataDir(): string {
  return fileURLToPath(new URL('../../../data/', import.meta.url));
}

export function builtinDataset(name: string): BuiltinDataset | undefined {
  return BUILTIN_DATASETS.find((d) => d.name === name);
}

export interface Dataset {
  /** Built-in name, or the path as given. */
  name: string;
  path: string;
  builtin: boolean;
  header: string[];
  rows: string[][];
  /** Suggested target (class) column, if the data set has one. */
  defaultTarget: string | undefined;
}

export interface LoadDatasetOptions {
  /** Where the built-in CSVs live. Default: the repository's data/ directory. */
  dataDir?: string;
  /** Skip derived columns (binning) of built-ins and return the file as it is. Default false. */
  raw?: boolean;
  /** Size caps for files given by path. */
  limits?: CsvLimits;
}

/** Replace a numeric column by class labels in place (same position, new name). */
export function applyBinning(header: string[], rows: string[][], b: Binning): void {
  const j = header.indexOf(b.column);
  if (j === -1) throw new FedtwinError('DATA_MISSING_COLUMN', `cannot bin: column "${b.column}" is missing`, { details: { column: b.column } });
  if (b.labels.length !== b.edges.length + 1) throw new FedtwinError('DATA_BAD_ARGUMENT', 'binning needs one more label than edges');
  header[j] = b.into;
  for (let i = 0; i < rows.length; i++) {
    const v = parseNumber(rows[i][j]);
    if (v === undefined) {
      throw new FedtwinError('DATA_BAD_VALUE', `cannot bin: data row ${i + 1}, column "${b.column}": "${rows[i][j]}" is not a number`, {
        details: { row: i + 1, column: b.column, value: rows[i][j] },
      });
    }
    let k = 0;
    while (k < b.edges.length && v > b.edges[k]) k++;
    rows[i][j] = b.labels[k];
  }
}

/**
 * Load a built-in data set by name (see BUILTIN_DATASETS) or any CSV file by path. Built-ins are
 * verified against their sha256 (`DATA_CHECKSUM_MISMATCH` if the file changed).
 */
export async function loadDataset(nameOrPath: string, opts: LoadDatasetOptions = {}): Promise<Dataset> {
  const info = builtinDataset(nameOrPath);
  if (info === undefined) {
    try {
      await stat(nameOrPath);
    } catch {
      throw new FedtwinError('DATA_NOT_FOUND', `no built-in data set or file named "${nameOrPath}"`, {
        hint: `Built-in data sets: ${BUILTIN_DATASETS.map((d) => d.name).join(', ')}; or give a path to a CSV file`,
      });
    }
    const { header, rows } = await readCsvFile(nameOrPath, opts.limits);
    return { name: nameOrPath, path: nameOrPath, builtin: false, header, rows, defaultTarget: undefined };
  }
  const dir = opts.dataDir ?? defaultDataDir();
  const path = join(dir, info.file);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new FedtwinError('DATA_NOT_FOUND', `built-in data set ${info.name} is missing: ${path}`, {
      hint: 'Restore data/ from the repository (git checkout -- data/)',
      cause: e,
    });
  }
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== info.sha256) {
    throw new FedtwinError('DATA_CHECKSUM_MISMATCH', `built-in data set ${info.name} is corrupted or modified: sha256 ${digest}, expected ${info.sha256}`, {
      hint: 'Restore the file from the repository (git checkout -- data/); line-ending conversion also changes the hash (data/.gitattributes disables it)',
      details: { path, sha256: digest, expected: info.sha256 },
    });
  }
  const { header, rows } = parseCsv(bytes, { ...DEFAULT_CSV_LIMITS, source: path });
  let defaultTarget = info.defaultTarget;
  if (info.binning !== undefined) {
    if (opts.raw === true) defaultTarget = undefined;
    else applyBinning(header, rows, info.binning);
  }
  return { name: info.name, path, builtin: true, header, rows, defaultTarget };
}

export interface LoadTableOptions extends LoadDatasetOptions, TableFromCsvOptions {
  /** Declared schema; if absent one is inferred from the whole file (fine for a simulation on public data). */
  schema?: TableSchema;
  /** Target column when inferring; default the data set's default target. */
  target?: string;
  maxCategories?: number;
  categorical?: string[];
}

/** loadDataset + (inferSchema unless a schema is given) + tableFromCsv. */
export async function loadDatasetTable(nameOrPath: string, opts: LoadTableOptions = {}): Promise<LoadedTable & { dataset: Dataset }> {
  const ds = await loadDataset(nameOrPath, opts);
  let schema = opts.schema;
  if (schema === undefined) {
    const target = opts.target ?? ds.defaultTarget;
    if (target === undefined) {
      throw new FedtwinError('DATA_NO_TARGET', `data set ${ds.name} has no default target column`, {
        hint: `Name a categorical column with --target (columns: ${ds.header.join(', ')})`,
      });
    }
    schema = inferSchema(ds.header, ds.rows, { target, maxCategories: opts.maxCategories, categorical: opts.categorical });
  }
  const t = tableFromCsv(ds.header, ds.rows, schema, {
    clampOutOfRange: opts.clampOutOfRange,
    ignoreExtraColumns: opts.ignoreExtraColumns,
    source: opts.source ?? ds.path,
  });
  return { ...t, dataset: ds };
}

/** Keep only the listed rows of a table (e.g. one node's share of a split). */
export function subsetTable(table: Table, indices: ReadonlyArray<number>): Table {
  return { schema: table.schema, rows: indices.map((i) => {
    const r = table.rows[i];
    if (r === undefined) throw new FedtwinError('DATA_BAD_ARGUMENT', `row index ${i} out of range (0…${table.rows.length - 1})`);
    return r;
  }) };
}

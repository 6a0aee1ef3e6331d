// Issue 14 item 3: `fedtwin generate --model FILE --rows N [--class VALUE | --condition COL=VALUE] --out FILE` from a
// saved model (model.json, as a node or `fedtwin sim` writes it), both generators. Spawns the real entry point.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrng, createTwinVae, encodeTable, loadDatasetTable, parseCsv, tableFromCsv, vaeGenerator, vaeState, type TableSchema } from '@fedtwin/models';
import { domainFromSchema, fitCalibration, fitMst, marginalsGenerator } from '@fedtwin/marginals';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const run = (args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, 'generate', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const dir = mkdtempSync(join(tmpdir(), 'fedtwin-generate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A table with a categorical feature besides the target: ward depends on the class.
const schema: TableSchema = { target: 'outcome', columns: [
  { name: 'age', kind: 'numeric', min: 18, max: 100, integer: true, decimals: 0 },
  { name: 'ward', kind: 'categorical', categories: ['icu', 'general', 'day'] },
  { name: 'outcome', kind: 'categorical', categories: ['died', 'survived'] },
] };
const marginalsModel = join(dir, 'marginals.json');
const vaeModel = join(dir, 'vae.json');

beforeAll(async () => {
  const prng = createPrng(1);
  const rows = Array.from({ length: 2000 }, () => {
    const died = prng.next() < 0.2;
    const ward = died ? (prng.next() < 0.7 ? 'icu' : 'general') : (prng.next() < 0.2 ? 'icu' : prng.next() < 0.5 ? 'general' : 'day');
    return [Math.round(30 + prng.next() * (died ? 60 : 40)), ward, died ? 'died' : 'survived'];
  });
  const run8 = fitMst([{ schema, rows }], { epsilon: 8, delta: 1e-5 });
  writeFileSync(marginalsModel, JSON.stringify(marginalsGenerator(run8.model).save({ mode: 'record', epsilon: run8.spent.epsilon, delta: 1e-5 })));
  const pima = await loadDatasetTable('pima_diabetes');
  const enc = encodeTable(pima);
  const config = { latentDim: 4, hidden: 16, seed: 2 };
  const vae = createTwinVae({ width: enc.width, segments: enc.segments, classes: enc.classes, ...config });
  await vae.trainEpochs(enc, { epochs: 1, batchSize: 64, learningRate: 0.01, seed: 1 });
  const g = vaeGenerator(pima.schema, vaeState(config, vae.getSharedWeights(), vae.getPrivateWeights()));
  writeFileSync(vaeModel, JSON.stringify(g.save({ mode: 'off', epsilon: null, delta: null })));
  g.dispose();
  vae.dispose();
}, 60_000);

const readOut = (path: string, s: TableSchema) => {
  const csv = parseCsv(readFileSync(path, 'utf8'));
  return { header: csv.header, rows: tableFromCsv(csv.header, csv.rows, s).rows };
};

describe('fedtwin generate', () => {
  it('marginals: rows of one class (--class), in the model\'s columns and formats; says no extra ε is spent', () => {
    const out = join(dir, 'died.csv');
    const r = run(['--model', marginalsModel, '--rows', '300', '--class', 'died', '--out', out, '--seed', '4']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote 300 rows .* \(outcome = died\)/);
    expect(r.stdout).toMatch(/no extra ε spent; the rows carry the model's ε = 8/);
    const t = readOut(out, schema);
    expect(t.header).toEqual(['age', 'ward', 'outcome']);
    expect(t.rows).toHaveLength(300);
    expect(t.rows.every((row) => row[2] === 'died')).toBe(true);
    // the class's own ward mix follows (mostly icu), not the pooled one
    expect(t.rows.filter((row) => row[1] === 'icu').length / 300).toBeGreaterThan(0.45);
  });

  it('marginals: rows with a category of a non-target column (--condition COL=VALUE); the class mix given that ward follows', () => {
    const out = join(dir, 'day.csv');
    const r = run(['--model', marginalsModel, '--rows', '400', '--condition', 'ward=day', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ generator: 'marginals', rows: 400, condition: { column: 'ward', value: 'day' }, extraEpsilon: 0 });
    const t = readOut(out, schema);
    expect(t.rows.every((row) => row[1] === 'day')).toBe(true);
    // nobody in the day ward died in the data: the noisy model keeps that rare
    expect(t.rows.filter((row) => row[2] === 'died').length / 400).toBeLessThan(0.1);
  });

  it('vae: rows of one class from a saved VAE', async () => {
    const pima = await loadDatasetTable('pima_diabetes');
    const out = join(dir, 'pos.csv');
    const r = run(['--model', vaeModel, '--rows', '50', '--class', 'pos', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/no DP guarantee/);
    const t = readOut(out, pima.schema);
    expect(t.rows).toHaveLength(50);
    expect(t.rows.every((row) => row[8] === 'pos')).toBe(true);
  });

  it('vae: a calibrated model (model.calibrate) maps every sample, a chosen class included, onto its released counts, and defaults to the released class mix', async () => {
    const pima = await loadDatasetTable('pima_diabetes');
    const saved = JSON.parse(readFileSync(vaeModel, 'utf8'));
    const g = vaeGenerator(pima.schema, saved.model);
    const reference = g.sample(2000, { seed: 3 });
    g.dispose();
    const domain = domainFromSchema(pima.schema, { bins: 64 });
    const k = pima.schema.columns.findIndex((c) => c.name === 'glucose');
    const c = domain.columns[k]!;
    if (c.kind !== 'numeric') throw new Error('glucose is numeric');
    // A release with all of glucose's mass in fine bin 40: every calibrated value must land there.
    const release = new Float64Array(c.edges.length - 1 + (c.missing ? 1 : 0));
    release[40] = 500;
    const oneWays = domain.columns.map((_, j) => (j === k ? release : undefined));
    const calibrated = { ...saved, model: { ...saved.model, calibration: fitCalibration(reference, domain, oneWays, 64), classMix: [0.9, 0.1] } };
    const path = join(dir, 'vae-calibrated.json');
    writeFileSync(path, JSON.stringify(calibrated));
    const inBin = (v: unknown) => typeof v === 'number' && v >= Math.floor(c.edges[40]!) && v <= Math.ceil(c.edges[41]!);
    for (const args of [['--class', 'pos'], []]) {
      const out = join(dir, `calibrated${args.length}.csv`);
      const r = run(['--model', path, '--rows', '400', ...args, '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      const t = readOut(out, pima.schema);
      expect(t.rows).toHaveLength(400);
      expect(t.rows.every((row) => inBin(row[k])), `${args.join(' ')}: glucose ${t.rows.slice(0, 5).map((row) => row[k]).join(', ')}`).toBe(true);
      const pos = t.rows.filter((row) => row[8] === 'pos').length / t.rows.length;
      if (args.length) expect(pos).toBe(1);
      else expect(pos).toBeLessThan(0.25); // the released mix (10 % pos), not the uniform one
    }
    // A map that does not fit (knots out of order) is refused when the model is opened, before anything is written.
    const broken = structuredClone(calibrated);
    broken.model.calibration.columns[0].knots.reverse();
    const brokenPath = join(dir, 'vae-broken-calibration.json');
    writeFileSync(brokenPath, JSON.stringify(broken));
    expectRefused([[['--model', brokenPath, '--rows', '5'], 'GENERATE_BAD_MODEL']]);
  }, 60_000);

  const expectRefused = (cases: Array<[string[], string]>) => {
    for (const [args, code] of cases) {
      const out = join(dir, 'never.csv');
      const r = run([...args, '--out', out]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain(code);
      expect(existsSync(out), args.join(' ')).toBe(false);
    }
  };

  it('errors are typed and write nothing: unknown class, column, value, numeric column, malformed or double condition', () => {
    expectRefused([
      [['--model', marginalsModel, '--rows', '5', '--class', 'recovered'], 'GENERATE_UNKNOWN_VALUE'],
      [['--model', marginalsModel, '--rows', '5', '--condition', 'bed=3'], 'GENERATE_UNKNOWN_COLUMN'],
      [['--model', marginalsModel, '--rows', '5', '--condition', 'ward=home'], 'GENERATE_UNKNOWN_VALUE'],
      [['--model', marginalsModel, '--rows', '5', '--condition', 'age=40'], 'GENERATE_BAD_CONDITION'],
      [['--model', marginalsModel, '--rows', '5', '--condition', 'ward'], 'CLI_BAD_ARGUMENT'],
      [['--model', marginalsModel, '--rows', '5', '--class', 'died', '--condition', 'ward=icu'], 'CLI_BAD_ARGUMENT'],
    ]);
  }, 60_000);

  it('errors are typed and write nothing: bad --rows (not a whole number, 0, above the 10,000,000 cap), unreadable or foreign model', () => {
    const notJson = join(dir, 'broken.json');
    writeFileSync(notJson, '{"format": "fedtwin-model", "vers');
    const foreign = join(dir, 'foreign.json');
    writeFileSync(foreign, JSON.stringify({ format: 'something-else', version: 1 }));
    expectRefused([
      [['--model', marginalsModel, '--rows', '0'], 'GENERATE_BAD_ROWS'],
      [['--model', marginalsModel, '--rows', '2.5'], 'GENERATE_BAD_ROWS'],
      [['--model', marginalsModel, '--rows', 'many'], 'GENERATE_BAD_ROWS'],
      [['--model', marginalsModel, '--rows', '10000001'], 'GENERATE_BAD_ROWS'],
      [['--model', join(dir, 'missing.json'), '--rows', '5'], 'GENERATE_MODEL_UNREADABLE'],
      [['--model', notJson, '--rows', '5'], 'GENERATE_BAD_MODEL'],
      [['--model', foreign, '--rows', '5'], 'GENERATE_BAD_MODEL'],
    ]);
  }, 60_000);
});

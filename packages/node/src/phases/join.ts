// Join: check this member agrees to its own manifest, join, check everything the aggregator announces
// against it, then load the site's records under the agreed schema and build the (seeded) model.
import { FedtwinError, isFedtwinError } from '@fedtwin/errors';
import { createTwinVae, encodeTable, extractUnitColumn, readCsvFile, tableFromCsv, type EncodedTable, type Table, type TableSchema, type TwinVae } from '@fedtwin/models';
import { JoinResponse, Protocols } from '@fedtwin/protocol';
import type { NodeInit } from '../api.ts';
import type { AggregatorLink } from '../call.ts';
import { agreedJoin, checkOwnFloor } from '../consortium-check.ts';
import { marginalsModel, vaeModel, type MemberModel, type ModelWeights } from '../member-model.ts';

type Csv = Awaited<ReturnType<typeof readCsvFile>>;

/** Read and parse before contacting anyone: a missing or malformed export fails fast (size-capped read). */
export function readRecords(init: NodeInit): Promise<Csv> {
  return readCsvFile(init.csvPath);
}

/** Before contacting anyone: does this member agree to its own manifest at all (privacy floor)? */
export function checkOwnAgreement(init: NodeInit): void {
  checkOwnFloor(init.consortium, init.host.peerId, { ...(init.privacyFloor ? { floor: init.privacyFloor } : {}), ...(init.allowPrivacyOff ? { allowPrivacyOff: true } : {}) });
}

/** Joins; everything the aggregator announces must be what this member pinned, and from here on the pinned values are used. */
export async function joinConsortium(init: NodeInit, link: AggregatorLink): Promise<JoinResponse> {
  const { header: announced } = await link.call(Protocols.join, { nodeVersion: process.version, backend: init.backend }, JoinResponse);
  const join = agreedJoin(init.consortium, announced);
  link.markJoined();
  init.logger.info({ event: 'joined', consortium: join.consortium, strategy: join.strategy, modelValues: join.modelValues }, `joined consortium ${join.consortium}`);
  return join;
}

export interface LoadedData {
  schema: TableSchema;
  /** The records as values (what the marginals generator counts); `data` is their encoding for the VAE. */
  table: Table;
  data: EncodedTable;
  /** With the manifest's privacy.unitColumn: the unit (e.g. patient) index of each row, 0..unitCount−1. */
  units: Int32Array | undefined;
  unitCount: number | undefined;
}

/**
 * The site's records, validated and encoded under the consortium's schema. With a unit column (patient-level DP)
 * the id column is taken out first, so it never reaches the schema or the model, and only dense unit indices are
 * kept (the ids themselves are not).
 *
 * A value outside the schema does not stop the member: a number beyond the declared bounds is clamped to the
 * bound, a row with a category (or class) the schema does not declare is dropped. Aborting instead would make
 * whether this site takes part — which the aggregator and every member see — depend on one record. Both are
 * functions of that record alone, so neighbouring datasets stay neighbours (per row, and per unit: a unit keeps
 * its other rows). How many is logged here (`data-clamped`, counts per column, never a value) and sent nowhere.
 */
export function loadData(init: NodeInit, join: JoinResponse, csv: Csv): LoadedData {
  const schema = join.schema as TableSchema;
  const unitColumn = join.privacy.record?.unitColumn;
  const byUnit = unitColumn === undefined ? undefined : unitsOf(csv, unitColumn, schema, init.csvPath);
  const records = byUnit ?? csv;
  const table = tableFromCsv(records.header, records.rows, schema, { source: init.csvPath, clampOutOfRange: true, dropUnknownCategories: true });
  const data: EncodedTable = encodeTable(table);
  if (data.rows < 1) throw new FedtwinError('DATA_EMPTY', `${init.csvPath} has no records`);
  const units = byUnit ? keptUnits(byUnit.units, table.report.droppedRows) : undefined;
  const counts = { rows: data.rows, ...(units ? { units: units.unitCount } : {}) };
  const { clamped, clampedTotal, dropped, droppedTotal } = table.report;
  if (clampedTotal > 0 || droppedTotal > 0) {
    init.logger.warn({ event: 'data-clamped', clamped, clampedTotal, dropped, droppedTotal, ...counts },
      `${init.csvPath}: ${clampedTotal} value(s) outside the schema's bounds clamped to the bound, ${droppedTotal} row(s) with a category the schema does not declare dropped (counts per column in this line; not sent to anyone)`);
  }
  const unitNote = units ? ` of ${units.unitCount} units (${unitColumn})` : '';
  init.logger.info({ event: 'data-loaded', columns: schema.columns.length, ...counts }, `loaded ${data.rows} records${unitNote} from ${init.csvPath}`);
  return { schema, table: { schema, rows: table.rows }, data, units: units?.units, unitCount: units?.unitCount };
}

/** Unit indices of the rows kept (`dropped`: ascending input indices), renumbered densely by first appearance. */
export function keptUnits(units: Int32Array, dropped: readonly number[]): { units: Int32Array; unitCount: number } {
  const out = new Int32Array(units.length - dropped.length);
  const renumber = new Map<number, number>();
  let d = 0;
  let k = 0;
  for (let i = 0; i < units.length; i++) {
    if (d < dropped.length && dropped[d] === i) { d++; continue; }
    let u = renumber.get(units[i]!);
    if (u === undefined) renumber.set(units[i]!, (u = renumber.size));
    out[k++] = u;
  }
  return { units: out, unitCount: renumber.size };
}

/** extractUnitColumn, with a hint that says where the column name comes from when the CSV lacks it. */
function unitsOf(csv: Csv, column: string, schema: TableSchema, source: string): ReturnType<typeof extractUnitColumn> {
  try {
    return extractUnitColumn(csv, column, { schema, source });
  } catch (err) {
    if (!isFedtwinError(err) || err.code !== 'DATA_MISSING_COLUMN') throw err;
    throw new FedtwinError(err.code, err.message, {
      hint: `the consortium manifest's privacy.unitColumn is "${column}": every site's CSV needs that column (the id of the patient, or other unit, each row belongs to). This CSV's header has: ${csv.header.join(', ')}`,
      details: { column },
      cause: err,
    });
  }
}

/** The consortium's generator: the VAE (seeded: version 0 is identical on every member) or the marginals member. */
export async function buildMemberModel(join: JoinResponse, data: EncodedTable, table: Table, units?: Int32Array): Promise<MemberModel> {
  return join.model.kind === 'marginals' ? marginalsModel(join, table, units) : vaeModel(buildModel(join, data), join, table);
}

/** The consortium's VAE, seeded: version 0 is identical on every member. */
export function buildModel(join: JoinResponse, data: EncodedTable): TwinVae {
  if (join.model.kind !== 'vae') throw new FedtwinError('NODE_MODEL_MISMATCH', `the consortium's generator is ${join.model.kind}, not vae`);
  return createTwinVae({
    width: data.width, segments: data.segments, classes: data.classes,
    latentDim: join.model.latentDim, hidden: join.model.hidden, sharedLayers: join.model.sharedLayers, seed: join.model.seed,
  });
}

/** The private layers' weights of version 0: seeded, the same on every member, trained on nothing. */
export function genesisPrivateWeights(join: JoinResponse, data: EncodedTable): Float32Array {
  const fresh = buildModel(join, data);
  try {
    return fresh.getPrivateWeights();
  } finally {
    fresh.dispose();
  }
}

export function checkModelSize(vae: ModelWeights, join: JoinResponse): void {
  if (vae.sharedSize !== join.modelValues) {
    throw new FedtwinError('NODE_MODEL_MISMATCH', `local ${join.model.kind === 'vae' ? 'shared model' : 'count vector'} has ${vae.sharedSize} values, the consortium's ${join.modelValues}`, { hint: 'run the same fedtwin version as the aggregator' });
  }
}

// Join: check this member agrees to its own manifest, join, check everything the aggregator announces
// against it, then load the site's records under the agreed schema and build the (seeded) model.
import { FedtwinError } from '@fedtwin/errors';
import { createTwinVae, encodeTable, readCsvFile, tableFromCsv, type EncodedTable, type Table, type TableSchema, type TwinVae } from '@fedtwin/models';
import { JoinResponse, Protocols } from '@fedtwin/protocol';
import type { NodeInit } from '../api.ts';
import type { AggregatorLink } from '../call.ts';
import { agreedJoin, checkOwnFloor } from '../consortium-check.ts';

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

/** The site's records, validated and encoded under the consortium's schema. */
export function loadData(init: NodeInit, join: JoinResponse, csv: Csv): { schema: TableSchema; data: EncodedTable } {
  const schema = join.schema as TableSchema;
  const table: Table = tableFromCsv(csv.header, csv.rows, schema);
  const data: EncodedTable = encodeTable(table);
  if (data.rows < 1) throw new FedtwinError('DATA_EMPTY', `${init.csvPath} has no records`);
  init.logger.info({ event: 'data-loaded', rows: data.rows, columns: schema.columns.length }, `loaded ${data.rows} records from ${init.csvPath}`);
  return { schema, data };
}

/** The consortium's model, seeded: version 0 is identical on every member. */
export function buildModel(join: JoinResponse, data: EncodedTable): TwinVae {
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

export function checkModelSize(vae: TwinVae, join: JoinResponse): void {
  if (vae.sharedSize !== join.modelValues) {
    throw new FedtwinError('NODE_MODEL_MISMATCH', `local shared model has ${vae.sharedSize} values, the consortium's ${join.modelValues}`, { hint: 'run the same fedtwin version as the aggregator' });
  }
}

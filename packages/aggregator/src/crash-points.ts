/**
 * Named points where tests kill the aggregator (SIGKILL, no cleanup) to prove each crash window between
 * its two stores (state and ledger) recovers. `FEDTWIN_CRASH_AT=<point>` or `<point>:<n>` (the n-th time the
 * point is reached, default the first). Unset in production: one environment read at start-up.
 */
const spec = process.env.FEDTWIN_CRASH_AT;
const [target, nth] = spec ? [spec.split(':')[0]!, Number(spec.split(':')[1] ?? 1)] : [undefined, 0];
let hits = 0;

export const CRASH_POINTS = [
  'after-round-store', // round open persisted in state, its `round` entry not yet appended
  'after-contribution-ledger', // a contribution entry appended, the update not yet persisted in state
  'after-close-store', // an aggregate persisted in state, its `aggregate` entry not yet appended
  'after-exclusion-ledger', // a culprit's exclusion entry appended, the exclusion not yet in state
  'after-withdraw-ledger', // a broken aggregate's withdraw entry appended, its replacement not yet in state
  'after-secagg-keys-closed', // a masked round's keys phase closed and stored; members not yet told
  'after-secagg-shares-closed', // its shares phase closed and stored; members not yet given their inboxes
  'after-secagg-recovery-ledger', // its recovery request in the ledger and checkpointed; members not yet pointed at it
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export function crashPoint(name: CrashPoint): void {
  if (target !== name) return;
  if (++hits === nth) process.kill(process.pid, 'SIGKILL');
}

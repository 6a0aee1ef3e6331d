import { verifyLedgerDir } from '@fedtwin/ledger';
const t = performance.now();
const r = await verifyLedgerDir('/tmp/lb20k/big');
console.log(r.ok, (performance.now() - t) / 1000);

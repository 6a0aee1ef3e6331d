// Worker thread for verifyLedgerDir: runs auditChunk on each job and posts the result back, its
// typed arrays transferred.
import { parentPort } from 'node:worker_threads';
import { auditChunk, resultTransferList, type AuditJob } from './audit-chunk.ts';

parentPort?.on('message', (job: AuditJob) => {
  const r = auditChunk(job);
  parentPort?.postMessage(r, resultTransferList(r));
});

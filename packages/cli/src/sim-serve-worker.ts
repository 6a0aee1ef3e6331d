// The `fedtwin sim --serve` server's thread (sim-serve.ts): answers while the sim's own thread computes.
import { parentPort, workerData } from 'node:worker_threads';
import { startSimProxy, type SimServeInit } from './sim-serve.ts';

const port = parentPort!;
try {
  // Serves until the sim terminates this thread.
  const server = await startSimProxy(workerData as SimServeInit);
  port.postMessage({ url: server.url, port: server.port });
} catch (err) {
  const e = err as { code?: unknown; message?: unknown; hint?: unknown; details?: unknown };
  port.postMessage({ error: { code: typeof e.code === 'string' ? e.code : 'SIM_SERVE_FAILED', message: String(e.message ?? err), ...(typeof e.hint === 'string' ? { hint: e.hint } : {}), ...(e.details && typeof e.details === 'object' ? { details: e.details } : {}) } });
  port.close();
}

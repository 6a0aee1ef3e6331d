/**
 * Loopback throughput of one large RPC body between two wire hosts in separate processes
 * (not a test). Usage:
 *   node packages/wire/bench.ts [MiB=256] [chunkKiB=1024] [windowKiB=4096] [--same-process]
 * Prints to stderr so the numbers never mix with a daemon's stdout logs.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { multiaddr } from '@multiformats/multiaddr';
import { z } from 'zod';
import { createWireHost, generateIdentity } from './src/index.ts';
import type { WireHost } from './src/index.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const mib = Number(args[0] ?? 256);
const chunkKiB = Number(args[1] ?? 1024);
const windowKiB = Number(args[2] ?? 4096);
const size = mib * 1024 * 1024;
const limits = { chunkBytes: chunkKiB * 1024, streamWindowBytes: windowKiB * 1024 };
const MARK = 0x5a;
const RAW_PROTOCOL = '/fedtwin-bench/raw/1.0.0';

function makeBody(): Uint8Array {
  const body = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) body[i] = i & 0xff;
  body[size - 1] = MARK;
  return body;
}

async function startServer(): Promise<WireHost> {
  const server = await createWireHost({ privateKey: await generateIdentity(), allow: () => true, limits });
  const body = makeBody();
  await server.handle('sink', {
    request: z.object({}),
    maxBodyBytes: size,
    handler: ({ body: b }) => ({ header: { got: b?.byteLength ?? 0, last: b?.[b.byteLength - 1] ?? -1 } }),
  });
  await server.handle('source', { request: z.object({}), maxBodyBytes: 0, handler: () => ({ header: {}, body }) });
  // Baseline: the same bytes on a bare libp2p stream (Noise + yamux, no framing, no body buffer).
  await server.libp2p.handle(RAW_PROTOCOL, (stream) => {
    let got = 0;
    stream.addEventListener('message', (evt) => {
      got += evt.data.byteLength;
      if (got === size) {
        stream.send(Uint8Array.of(1));
        void stream.close();
      }
    });
  });
  return server;
}

if (process.argv.includes('--serve')) {
  const server = await startServer();
  process.send?.({ addr: server.addrs()[0] });
  process.on('message', () => void server.stop().then(() => process.exit(0)));
} else {
  let addr: string;
  let stopServer: () => Promise<void>;
  const same = process.argv.includes('--same-process');
  if (same) {
    const server = await startServer();
    addr = server.addrs()[0];
    stopServer = () => server.stop();
  } else {
    const child = fork(fileURLToPath(import.meta.url), [...args, '--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    addr = await new Promise<string>((resolve, reject) => {
      child.once('message', (m) => resolve((m as { addr: string }).addr));
      child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    stopServer = async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.send('stop');
      await exited;
    };
  }
  const client = await createWireHost({ privateKey: await generateIdentity(), allow: () => true, limits });
  const body = makeBody();
  const res = z.object({ got: z.number(), last: z.number() });
  await client.dial(addr);
  // Warm-up: JIT and connection state, so the timed runs measure the steady state.
  await client.request(addr, 'sink', { header: {}, body: body.subarray(0, Math.min(size, 16 * 1024 * 1024)) }, { response: res, maxBodyBytes: 0 });
  const before = client.bytes();

  const t0 = performance.now();
  const up = await client.request(addr, 'sink', { header: {}, body }, { response: res, maxBodyBytes: 0, timeoutMs: 600_000 });
  const t1 = performance.now();
  const down = await client.request(addr, 'source', { header: {} }, { response: z.object({}), maxBodyBytes: size, timeoutMs: 600_000 });
  const t2 = performance.now();
  if (up.header.got !== size || up.header.last !== MARK || down.body?.byteLength !== size || down.body[size - 1] !== MARK) {
    throw new Error('transfer corrupted');
  }
  const after = client.bytes();

  const raw = await client.libp2p.dialProtocol(multiaddr(addr), RAW_PROTOCOL);
  const ack = new Promise<void>((resolve) => raw.addEventListener('message', () => resolve(), { once: true }));
  const t3 = performance.now();
  for (let off = 0; off < size; off += limits.chunkBytes) {
    if (!raw.send(body.subarray(off, Math.min(size, off + limits.chunkBytes)))) await raw.onDrain();
  }
  await ack;
  const t4 = performance.now();
  await raw.close();

  // This VM pays for first touch of fresh memory; every received body lands in fresh memory.
  const t5 = performance.now();
  const fresh = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) fresh[i] = 1;
  const t6 = performance.now();
  const mbps = (ms: number): string => (size / 1e6 / (ms / 1000)).toFixed(0);
  process.stderr.write(
    `wire loopback ${mib} MiB (${same ? 'one process' : 'two processes'}), chunk ${chunkKiB} KiB, window ${windowKiB} KiB: ` +
      `upload ${(t1 - t0).toFixed(0)} ms = ${mbps(t1 - t0)} MB/s, download ${(t2 - t1).toFixed(0)} ms = ${mbps(t2 - t1)} MB/s; ` +
      `rpc bytes sent ${after.sent - before.sent}, received ${after.received - before.received}; ` +
      `baseline raw libp2p stream upload ${(t4 - t3).toFixed(0)} ms = ${mbps(t4 - t3)} MB/s; ` +
      `first touch of ${mib} MiB fresh memory ${(t6 - t5).toFixed(0)} ms = ${mbps(t6 - t5)} MB/s\n`,
  );
  await client.stop();
  await stopServer();
}

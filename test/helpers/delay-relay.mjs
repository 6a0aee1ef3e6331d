// A TCP relay that adds a fixed one-way delay in each direction: where the kernel has no tc netem, this puts
// the round-trip latency on the path between hosts. Runs inside a network namespace:
//   node delay-relay.mjs LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS
// It prints "ready" once listening. Order is kept (timers with one delay fire in order); the test bounds volume.
import { createConnection, createServer } from 'node:net';

const [listenHost, listenPort, targetHost, targetPort, delayMs] = process.argv.slice(2);
const delay = Number(delayMs);

function pipeDelayed(from, to) {
  from.on('data', (chunk) => setTimeout(() => { if (!to.destroyed) to.write(chunk); }, delay));
  from.on('end', () => setTimeout(() => to.end(), delay));
  from.on('error', () => setTimeout(() => to.destroy(), delay));
  from.on('close', () => setTimeout(() => to.destroy(), delay + 1));
}

const server = createServer((client) => {
  const upstream = createConnection({ host: targetHost, port: Number(targetPort) });
  pipeDelayed(client, upstream);
  pipeDelayed(upstream, client);
});
server.listen(Number(listenPort), listenHost, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));

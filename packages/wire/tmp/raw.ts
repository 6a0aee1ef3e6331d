import { createWireHost, generateIdentity } from '../src/index.ts'
import { multiaddr } from '@multiformats/multiaddr'
const mib = Number(process.argv[2] ?? 256), chunk = Number(process.argv[3] ?? 1024) * 1024
const a = await createWireHost({ privateKey: await generateIdentity(), allow: () => true })
const b = await createWireHost({ privateKey: await generateIdentity(), allow: () => true })
let got = 0; let done!: () => void; const fin = new Promise<void>(r => done = r)
a.libp2p.handle('/raw/1.0.0', (stream) => {
  stream.addEventListener('message', (e: any) => { got += e.data.byteLength; if (got >= mib * 1048576) done() })
})
const s = await b.libp2p.dialProtocol(multiaddr(a.addrs()[0]), '/raw/1.0.0')
const buf = new Uint8Array(chunk)
const t0 = performance.now()
for (let sent = 0; sent < mib * 1048576; sent += chunk) { if (!s.send(buf)) await s.onDrain() }
await fin
const ms = performance.now() - t0
console.error(`raw one-process ${mib} MiB chunk ${chunk >> 10} KiB: ${ms.toFixed(0)} ms = ${(mib * 1.048576 / (ms / 1000)).toFixed(0)} MB/s`)
await b.stop(); await a.stop()

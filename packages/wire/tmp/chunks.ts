import { z } from 'zod'
import { createWireHost, generateIdentity } from '../src/index.ts'
import { StreamReader } from '../src/reader.ts'
const sizes: number[] = []
const orig = (StreamReader.prototype as any)
const a = await createWireHost({ privateKey: await generateIdentity(), allow: () => true })
const b = await createWireHost({ privateKey: await generateIdentity(), allow: () => true })
a.libp2p.handle('/raw/1.0.0', (stream) => {
  stream.addEventListener('message', (e: any) => { const d = e.data; if (d instanceof Uint8Array) sizes.push(d.byteLength); else for (const c of d) sizes.push(c.byteLength) })
})
const s = await b.libp2p.dialProtocol((await import('@multiformats/multiaddr')).multiaddr(a.addrs()[0]), '/raw/1.0.0')
const buf = new Uint8Array(1 << 20)
for (let i = 0; i < 32; i++) { if (!s.send(buf)) await s.onDrain() }
await s.close()
await new Promise(r => setTimeout(r, 500))
sizes.sort((x, y) => x - y)
console.error('n', sizes.length, 'total', sizes.reduce((x, y) => x + y, 0), 'median', sizes[sizes.length >> 1], 'min', sizes[0], 'max', sizes.at(-1))
await b.stop(); await a.stop()

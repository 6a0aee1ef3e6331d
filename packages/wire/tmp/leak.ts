import { z } from 'zod'
import { createWireHost, generateIdentity } from '../src/index.ts'
const a = await createWireHost({ privateKey: await generateIdentity(), allow: () => true })
const b = await createWireHost({ privateKey: await generateIdentity(), allow: () => true })
await a.handle('x', { request: z.object({ fail: z.boolean() }), maxBodyBytes: 10, handler: ({ header }) => { if (header.fail) throw new Error('x'); return { header: {} , body: new Uint8Array(100) } } })
for (let i = 0; i < 50; i++) {
  await b.request(a.addrs()[0], 'x', { header: { fail: i % 3 === 0 }, body: new Uint8Array(i % 5 === 0 ? 100 : 5) }, { response: z.object({}), maxBodyBytes: 1000 }).catch((e) => e.code)
}
await new Promise(r => setTimeout(r, 300))
const streams = (h: any) => h.libp2p.getConnections().map((c: any) => c.streams.map((s: any) => `${s.protocol}:${s.status}`))
console.error('a', JSON.stringify(streams(a)), 'b', JSON.stringify(streams(b)))
await b.stop(); await a.stop()

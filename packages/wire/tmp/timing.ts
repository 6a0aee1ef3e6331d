import { z } from 'zod'
import { createWireHost, generateIdentity } from '../src/index.ts'
let t = performance.now()
const lap = (l: string) => { const n = performance.now(); console.error(l, (n - t).toFixed(1), 'ms'); t = n }
const a = await createWireHost({ privateKey: await generateIdentity(), allow: () => true }); lap('create a')
const b = await createWireHost({ privateKey: await generateIdentity(), allow: () => true }); lap('create b')
await a.handle('x', { request: z.object({}), maxBodyBytes: 0, handler: () => ({ header: {} }) }); lap('handle')
await b.dial(a.addrs()[0]); lap('dial')
await b.request(a.addrs()[0], 'x', { header: {} }, { response: z.object({}), maxBodyBytes: 0 }); lap('req1')
await b.request(a.addrs()[0], 'x', { header: {} }, { response: z.object({}), maxBodyBytes: 0 }); lap('req2')
await b.stop(); lap('stop b')
await a.stop(); lap('stop a')

import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { generateKeyPair } from '@libp2p/crypto/keys'

async function mk(allow: (id: string) => boolean, listen = ['/ip4/127.0.0.1/tcp/0']) {
  const privateKey = await generateKeyPair('Ed25519')
  return createLibp2p({
    privateKey,
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      denyDialMultiaddr: () => false,
      denyDialPeer: (p) => { const d = !allow(p.toString()); if (d) console.log('denyDialPeer', p.toString()); return d },
      denyInboundEncryptedConnection: (p) => { const d = !allow(p.toString()); if (d) console.log('deny inbound', p.toString()); return d },
      denyOutboundEncryptedConnection: (p) => { const d = !allow(p.toString()); if (d) console.log('deny outbound', p.toString()); return d },
    },
    services: { identify: identify(), ping: ping() },
  })
}
const a = await mk(() => false)
const b = await mk(() => true)
a.handle('/x/1.0.0', () => {})
try { const c0 = await b.dial(a.getMultiaddrs()[0]) ; console.log('dial ok?!', c0.status); await new Promise(r => setTimeout(r, 50)); console.log('after 50ms', c0.status) } catch (e: any) { console.log('remote refused:', e.name, e.code, e.message, e.errors?.map((x: any) => x.name + ':' + x.message)) }
try { const s = await b.dialProtocol(a.getMultiaddrs()[0], '/x/1.0.0') ; console.log('dialProtocol ok?!') } catch (e: any) { console.log('remote refused dialProtocol:', e.name, e.code, e.message) }
try { await b.services.ping.ping(a.getMultiaddrs()[0]) ; console.log('ping ok?!') } catch (e: any) { console.log('remote refused ping:', e.name, e.code, e.message) }

try { await a.dial(b.getMultiaddrs()[0]) ; console.log('dial ok?!') } catch (e: any) { console.log('local refused:', e.name, e.message) }
try { await a.dial(b.peerId) ; console.log('dial ok?!') } catch (e: any) { console.log('local refused by id:', e.name, e.message) }
try { await b.dialProtocol(b.getMultiaddrs()[0], '/x/1.0.0') } catch (e: any) { console.log('self:', e.name, e.message) }
const c = await mk(() => true)
try { await c.dialProtocol(b.getMultiaddrs()[0], '/x/1.0.0') } catch (e: any) { console.log('unsupported:', e.name, e.message) }
try { await mk(() => true, [b.getMultiaddrs()[0].toString().replace(/\/p2p\/.*/, '')]) } catch (e: any) { console.log('inuse:', e.name, e.code, e.message, e.cause?.code, e.errors) }
try { await c.dial((await import('@multiformats/multiaddr')).multiaddr('/ip4/127.0.0.1/tcp/1')) } catch (e: any) { console.log('conn refused:', e.name, e.message, e.errors?.map((x: any) => x.name + ':' + x.code+ ':' + x.message)) }
await a.stop(); await b.stop(); await c.stop()

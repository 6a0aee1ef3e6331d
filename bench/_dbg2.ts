import { Level } from 'level';
const db = new Level<Uint8Array, Uint8Array>('/tmp/lb20k/big', { keyEncoding: 'view', valueEncoding: 'view' });
const e = db.sublevel<Uint8Array, Uint8Array>('e', { keyEncoding: 'view', valueEncoding: 'view' });
const it = e.iterator({ highWaterMarkBytes: 16 * 1024 * 1024 } as never);
const sizes = [];
for (let i = 0; i < 5; i++) sizes.push((await it.nextv(2048)).length);
console.log(sizes);
await it.close(); await db.close();

// Which round tags this member has encrypted an update under, kept beside its HE key (not in the Level
// state, which an operator may wipe to resync): all members of a round share its mask polynomial a, so two
// different updates under one tag would let the aggregator subtract them. See docs/he.md §2.
import { open, readFile } from 'node:fs/promises';
import { FedtwinError } from '@fedtwin/errors';

/** 64 hex characters and a newline per claim; the file is refused beyond this (about 250,000 rounds). */
const MAX_FILE_BYTES = 16 << 20;
const LINE = /^[0-9a-f]{64}$/;

export interface RoundClaims {
  has(tagHex: string): boolean;
  /** Records the tag durably (appended and fsynced) before the ciphertext may leave this member. */
  claim(tagHex: string): Promise<void>;
}

export async function openRoundClaims(path: string): Promise<RoundClaims> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw new FedtwinError('NODE_STATE_IO', `cannot read the round-claims file ${path}: ${err.message}`, { hint: 'check the file\'s permissions' });
  });
  if (text.length > MAX_FILE_BYTES) {
    throw new FedtwinError('NODE_STATE_CORRUPT', `round-claims file ${path} is ${text.length} bytes, more than ${MAX_FILE_BYTES}`, { hint: 'rotate the HE key (fedtwin keys rotate): claims are per key, and a new key starts a new file' });
  }
  const tags = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === '') continue;
    if (!LINE.test(l)) {
      // A torn last line (crash mid-append) is cut off: its ciphertext was never sent, since sending waits for the fsync.
      if (i === lines.length - 1) {
        const f = await open(path, 'r+');
        try {
          await f.truncate(Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
          await f.sync();
        } finally {
          await f.close();
        }
        continue;
      }
      throw new FedtwinError('NODE_STATE_CORRUPT', `round-claims file ${path} line ${i + 1} is not a round tag`, { hint: 'the file was edited or damaged; restore it from backup (deleting it re-allows mask reuse)' });
    }
    tags.add(l);
  }
  return {
    has: (tagHex) => tags.has(tagHex),
    async claim(tagHex) {
      if (!LINE.test(tagHex)) throw new FedtwinError('NODE_INTERNAL', 'a round tag must be 64 hex characters');
      if (tags.has(tagHex)) return;
      const f = await open(path, 'a', 0o600);
      try {
        await f.write(`${tagHex}\n`);
        await f.sync();
      } finally {
        await f.close();
      }
      tags.add(tagHex);
    },
  };
}

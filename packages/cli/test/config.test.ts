import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AggregatorConfigSchema, NodeConfigSchema, loadConfigFile, validateConfig } from '../src/config.ts';

const node = {
  consortium: 'consortium.yaml', dataDir: 'd', identity: 'k', aggregator: { peerId: '12D3KooWRFGvfm6rcokkWBEeoxyyotr9CzK8q1SL4dvJNo3XSpHU', address: '/ip4/127.0.0.1/tcp/9400' },
  data: { csv: 'x.csv' },
};

describe('config validation', () => {
  it('accepts a minimal node config and fills defaults', () => {
    const c = validateConfig(node, NodeConfigSchema, 'node.yaml');
    expect(c.listen).toEqual([]); // nodes only dial out: no listener unless configured
    expect(c.log.level).toBe('info');
  });

  it('names the bad field', () => {
    expect(() => validateConfig({ ...node, aggregator: { ...node.aggregator, peerId: 'bob' } }, NodeConfigSchema, 'node.yaml'))
      .toThrowError(/field "aggregator\.peerId"/);
    expect(() => validateConfig({ ...node, colour: 'red' }, NodeConfigSchema, 'node.yaml')).toThrowError(/colour/);
    expect(() => validateConfig({ ...node, aggregator: { ...node.aggregator, address: 'localhost:9400' } }, NodeConfigSchema, 'n')).toThrowError(/aggregator\.address.*multiaddr/);
    try {
      validateConfig({ dataDir: 'd' }, AggregatorConfigSchema, 'agg.yaml');
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'CONFIG_INVALID' });
    }
  });

  // Issue 15: a typo in a .strict() object was reported on the field it replaced ("aggregator.address: expected
  // string, received undefined"), and the typo itself only in the hint, as "aggregator: Unrecognized key".
  it('a typo is reported on the mistyped key, with the closest valid one, before the field it left missing', () => {
    const { aggregator, ...rest } = node;
    const cases: Array<[unknown, RegExp]> = [
      [{ ...rest, aggregator: { adress: aggregator.address } }, /field "aggregator\.adress": is not a known field \(did you mean "address"\?\)/],
      [{ ...node, exitWhenDne: true }, /field "exitWhenDne": is not a known field \(did you mean "exitWhenDone"\?\)/],
      [{ ...node, data: { cvs: 'x.csv' } }, /field "data\.cvs": is not a known field \(did you mean "csv"\?\)/],
      [{ ...node, privacy: { epsilon: 3, requre: {} } }, /field "privacy\.requre": is not a known field \(did you mean "require"\?\)/],
      [{ ...node, privacy: { require: { maxEpslion: 3 } } }, /field "privacy\.require\.maxEpslion": is not a known field \(did you mean "maxEpsilon"\?\)/],
    ];
    for (const [raw, message] of cases) {
      try {
        validateConfig(raw, NodeConfigSchema, 'node.yaml');
        expect.unreachable();
      } catch (e) {
        expect(e).toMatchObject({ code: 'CONFIG_INVALID' });
        expect((e as Error).message).toMatch(message);
      }
    }
    // The field the typo left out is still listed, said plainly.
    try {
      validateConfig({ ...rest, aggregator: { adress: aggregator.address } }, NodeConfigSchema, 'node.yaml');
    } catch (e) {
      expect((e as { hint: string }).hint).toMatch(/aggregator\.address: is missing \(expected string\)/);
      expect((e as { details: { field: string } }).details.field).toBe('aggregator.adress');
    }
  });

  it('an unknown key nothing resembles lists the valid keys there', () => {
    expect(() => validateConfig({ ...node, log: { level: 'info', colour: 'red' } }, NodeConfigSchema, 'node.yaml'))
      .toThrowError(/field "log\.colour": is not a known field; valid here: level/);
    expect(() => validateConfig({ dataDir: 'd' }, AggregatorConfigSchema, 'agg.yaml')).toThrowError(/field "consortium": is missing/);
  });

  it('allowIps takes addresses and CIDR ranges (IPv4, IPv6) and names a bad entry', () => {
    const agg = { consortium: 'c.yaml', dataDir: 'd', identity: 'k', schema: 's.json' };
    expect(validateConfig({ ...agg, allowIps: ['10.0.0.7', '10.1.0.0/16', 'fd00::/64', '::1'] }, AggregatorConfigSchema, 'agg.yaml').allowIps).toHaveLength(4);
    for (const bad of ['10.0.0.300', '10.0.0.0/33', 'fd00::/129', 'host.example', '10.0.0.0/8/1', '']) {
      expect(() => validateConfig({ ...agg, allowIps: [bad] }, AggregatorConfigSchema, 'agg.yaml'), bad).toThrowError(/field "allowIps\.0": must be an IP address .* or a CIDR range/);
    }
    expect(() => validateConfig({ ...node, allowIps: ['10.0.0.0/24', 'x'] }, NodeConfigSchema, 'node.yaml')).toThrowError(/allowIps\.1/);
  });

  it('reads YAML and JSON files and reports syntax errors with CONFIG_PARSE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fedtwin-cfg-'));
    try {
      await writeFile(join(dir, 'n.yaml'), `consortium: c.yaml\ndataDir: d\nidentity: k\naggregator: { peerId: ${node.aggregator.peerId}, address: /ip4/127.0.0.1/tcp/9400 }\ndata: { csv: x.csv }\n`);
      const { config, baseDir } = await loadConfigFile(join(dir, 'n.yaml'), NodeConfigSchema);
      expect(config.data.csv).toBe('x.csv');
      expect(baseDir).toBe(dir);
      await writeFile(join(dir, 'bad.json'), '{"dataDir": ');
      await expect(loadConfigFile(join(dir, 'bad.json'), NodeConfigSchema)).rejects.toMatchObject({ code: 'CONFIG_PARSE' });
      await expect(loadConfigFile(join(dir, 'none.yaml'), NodeConfigSchema)).rejects.toMatchObject({ code: 'CONFIG_NOT_FOUND' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

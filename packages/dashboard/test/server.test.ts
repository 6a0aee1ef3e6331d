// The read-only view server on real sockets: what it serves, to whom, and what it refuses.
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { isFedtwinError } from '@fedtwin/errors';
import { isLoopback, parseListen, startViewServer, type ViewServer } from '../src/index.ts';

const servers: ViewServer[] = [];
afterAll(async () => { for (const s of servers) await s.close(); });

/** A raw GET (fetch would not let the test set the Host header). */
function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => { body += b.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const routes = {
  snapshot: async () => ({ role: 'aggregator', at: 1, status: null, bytes: {}, report: null, source: 'daemon' }),
  metrics: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', body: 'fedtwin_test_total 1\n' }),
};

describe('listen addresses', () => {
  it('parses host:port and tells loopback from the rest', () => {
    expect(parseListen('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(() => parseListen('9464')).toThrow(/host:port/);
    expect(() => parseListen('127.0.0.1:70000')).toThrow(/host:port/);
    for (const h of ['127.0.0.1', '127.3.2.1', '::1', 'localhost']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '10.0.0.5', '::', 'example.org', '128.0.0.1']) expect(isLoopback(h), h).toBe(false);
  });
});

describe('startViewServer', () => {
  it('refuses a non-loopback bind without a token (HTTP_TOKEN_REQUIRED), before binding', async () => {
    const err = await startViewServer({ listen: '0.0.0.0:0', routes, field: 'metrics.listen', tokenField: 'metrics.token' }).catch((e: unknown) => e);
    expect(isFedtwinError(err, 'HTTP_TOKEN_REQUIRED'), String(err)).toBe(true);
    expect(String((err as Error).message)).toMatch(/metrics\.listen 0\.0\.0\.0:0/);
  });

  it('serves the page, uPlot from node_modules and the data on loopback; read-only; checks Host', async () => {
    const s = await startViewServer({ listen: '127.0.0.1:0', routes });
    servers.push(s);
    const page = await get(`${s.url}/`);
    expect(page.status).toBe(200);
    expect(page.body).toContain('/vendor/uPlot.iife.min.js');
    const uplot = await get(`${s.url}/vendor/uPlot.iife.min.js`);
    expect(uplot.status).toBe(200);
    expect(uplot.body).toMatch(/uPlot/);
    expect((await get(`${s.url}/app.js`)).status).toBe(200);
    expect(JSON.parse((await get(`${s.url}/api/dashboard`)).body)).toMatchObject({ role: 'aggregator' });
    expect((await get(`${s.url}/metrics`)).body).toContain('fedtwin_test_total 1');
    expect((await get(`${s.url}/../../etc/passwd`)).status).toBe(404);
    expect((await get(`${s.url}/api/dashboard`, {}, 'POST')).status).toBe(405);
    expect((await get(`${s.url}/metrics`, {}, 'DELETE')).status).toBe(405);
    // DNS rebinding: a page served under another name that resolves to 127.0.0.1 gets nothing
    expect((await get(`${s.url}/api/dashboard`, { Host: `attacker.example:${s.port}` })).status).toBe(421);
    expect((await get(`${s.url}/api/dashboard`, { Host: `localhost:${s.port}` })).status).toBe(200);
  });

  it('with a token: the data routes need it (401 without, 200 with), the page does not', async () => {
    const token = 'x'.repeat(8) + 'secret-token-1234';
    const s = await startViewServer({ listen: '0.0.0.0:0', token, routes });
    servers.push(s);
    const url = `http://127.0.0.1:${s.port}`;
    const denied = await get(`${url}/metrics`);
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toMatch(/Bearer/);
    expect((await get(`${url}/api/dashboard`, { Authorization: 'Bearer wrong-token-wrong-token' })).status).toBe(401);
    expect((await get(`${url}/metrics`, { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await get(`${url}/api/dashboard`, { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await get(`${url}/`)).status).toBe(200);
  });
});

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { FedtwinError } from '@fedtwin/errors';
import { isLoopback, parseListen } from './listen.ts';
import { staticAsset } from './assets.ts';

/** What a view server serves besides the static page: each route only if given. */
export interface ViewRoutes {
  /** GET /api/dashboard: the JSON the page renders (polled every few seconds). */
  snapshot?: () => Promise<unknown>;
  /** GET /metrics: Prometheus exposition text. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
}

export interface ViewServerInit {
  /** `host:port` (port 0: any free port; the bound one is in `url`). */
  listen: string;
  /** Bearer token for the data routes (/api/*, /metrics). Required unless `listen` is a loopback address. */
  token?: string;
  routes: ViewRoutes;
  /** The config field `listen` came from, for error messages (`dashboard.listen`, `--serve`). */
  field?: string;
  /** Where the token would be configured, for the refusal's hint. */
  tokenField?: string;
  log?: { warn(obj: object, msg: string): void };
}

export interface ViewServer {
  /** `http://host:port` as bound. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A read-only HTTP server for the daemons' dashboards and metrics. GET and HEAD only (nothing here changes a
 * daemon). A loopback bind without a token checks the Host header, so a web page that rebinds its own name to
 * 127.0.0.1 cannot read the data (DNS rebinding); any other bind refuses to start without a token, and with one
 * the data routes need `Authorization: Bearer <token>`. The static page itself holds no data and is served to
 * anyone who can connect, so a browser can load it and then send the token it is given (URL fragment).
 */
export async function startViewServer(init: ViewServerInit): Promise<ViewServer> {
  const field = init.field ?? 'listen';
  const addr = parseListen(init.listen, field);
  const loopback = isLoopback(addr.host);
  if (!loopback && !init.token) {
    throw new FedtwinError('HTTP_TOKEN_REQUIRED', `${field} ${init.listen} is reachable from other machines, and no bearer token is configured`, {
      hint: `set ${init.tokenField ?? 'a token'} (a random string of at least 16 characters, e.g. \`openssl rand -hex 24\`), or bind to 127.0.0.1`,
      details: { field, listen: init.listen },
    });
  }
  const tokenDigest = init.token ? digest(init.token) : undefined;
  let boundPort = addr.port;
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      init.log?.warn({ event: 'http-error', url: req.url, err: String(err) }, `dashboard request failed: ${String(err)}`);
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // A scraper or browser that keeps a connection open must not hold the daemon's exit.
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  const hostAllowed = (host: string | undefined): boolean => {
    if (tokenDigest || host === undefined) return true; // with a token, the token is the check
    const h = host.toLowerCase();
    return [`127.0.0.1:${boundPort}`, `localhost:${boundPort}`, `[::1]:${boundPort}`, `${addr.host.toLowerCase()}:${boundPort}`].includes(h);
  };
  const authorized = (req: IncomingMessage): boolean => {
    if (!tokenDigest) return true;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    return m !== null && timingSafeEqual(digest(m[1]!), tokenDigest);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'read-only: GET and HEAD only\n');
    }
    if (!hostAllowed(req.headers.host)) return send(res, 421, 'text/plain; charset=utf-8', 'unexpected Host header\n');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/metrics' || path.startsWith('/api/')) {
      if (!authorized(req)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="fedtwin"');
        return send(res, 401, 'text/plain; charset=utf-8', 'bearer token required\n');
      }
      if (path === '/metrics' && init.routes.metrics) {
        const m = await init.routes.metrics();
        return send(res, 200, m.contentType, m.body);
      }
      if (path === '/api/dashboard' && init.routes.snapshot) {
        return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(await init.routes.snapshot()));
      }
      return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
    if (!init.routes.snapshot) {
      // a metrics-only server: say where the metrics are
      if (path === '/') return send(res, 200, 'text/plain; charset=utf-8', 'fedtwin metrics: GET /metrics\n');
      return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
    if (path === '/favicon.ico') {
      res.statusCode = 204;
      return void res.end();
    }
    const asset = await staticAsset(path);
    if (!asset) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    return send(res, 200, asset.contentType, asset.body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new FedtwinError('HTTP_LISTEN_FAILED', `cannot listen on ${field} ${init.listen}: ${err.code ?? err.message}`, {
        hint: err.code === 'EADDRINUSE' ? 'another process uses that port: pick another one' : 'check the address (an interface of this machine) and the port',
        details: { field, listen: init.listen }, cause: err,
      }));
    });
    server.listen(addr.port, addr.host, () => resolve());
  });
  const a = server.address();
  boundPort = typeof a === 'object' && a ? a.port : addr.port;
  const hostPart = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  return {
    url: `http://${hostPart}:${boundPort}`,
    port: boundPort,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function send(res: ServerResponse, status: number, contentType: string, body: string | Buffer): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Content-Security-Policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

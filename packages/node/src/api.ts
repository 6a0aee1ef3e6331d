// The node's public shapes: what createNode() takes, what it returns and what run() reports.
import type { PrivateKey } from '@libp2p/interface';
import type { PrivacyFloor } from '@fedtwin/consortium';
import type { PinnedConsortium } from './consortium-check.ts';
import type { SiteBudget } from './privacy.ts';
import type { Logger, NodeHost } from './types.ts';

export interface SyntheticOutput {
  /** Rows to generate when the federation finishes. */
  rows: number;
  /** CSV file to write them to. */
  out: string;
  /**
   * Class mix to generate (category → weight, normalised), a public choice of this site's operator. Default: the
   * manifest's `training.classMix`, else uniform under DP and this site's own label mix only with DP off.
   */
  classProbs?: Record<string, number>;
}

export interface NodeInit {
  host: NodeHost;
  /** The consortium manifest this member installed: what it agreed to; everything announced is checked against it. */
  consortium: PinnedConsortium;
  /** The weakest privacy this member contributes under (a manifest weaker than it is refused). */
  privacyFloor?: PrivacyFloor;
  /** This member's own config says `privacy: { mode: off }`: the only way it joins a consortium without DP. */
  allowPrivacyOff?: boolean;
  /** Aggregator's multiaddr including `/p2p/<peer ID>` (re-dialled after it restarts), or its peer ID. */
  aggregator: string;
  /** Give up after the aggregator has been unreachable this long (default 300 s). */
  unreachableGiveUpSeconds?: number;
  dataDir: string;
  /** The site's records (CSV); validated against the consortium's schema at join. */
  csvPath: string;
  backend: string;
  logger: Logger;
  synthetic?: SyntheticOutput;
  /** Where to write a JSON summary (losses, bytes) when the federation finishes. */
  resultPath?: string;
  /** Return from run() when the federation finishes (default true). */
  exitWhenDone?: boolean;
  /** For tests and sims: crash on purpose after this many contributions (simulates a dying site). */
  bytes?: () => { sent: number; received: number };
  seed?: number;
  /** This member's own privacy budget (defaults: the consortium's). */
  privacy?: SiteBudget;
  /** Simulations only: draw DP noise and HE rounding from `seed` so a run can be reproduced. Anyone who
   *  knows the seed can subtract the noise, so a real site never sets this. */
  seededNoise?: boolean;
  /** HE worker threads (default: 2, or 1 on a one-core machine). */
  heThreads?: number;
  /** This member's libp2p identity: opens the HE key sealed for it in the key ceremony. */
  identity?: PrivateKey;
  /** Where the HE secret key is kept (mode 0600); default `<dataDir>/../he-secret.key` (beside, not inside, the Level directory). */
  heKeyFile?: string;
  /** Where this member keeps its replica of the consortium's audit log (needs `identity`). */
  ledgerDir?: string;
  /**
   * Other members to compare ledger views with after each sync (gossip, issue 12 item 6). Needs a host that
   * listens and admits manifest members. Empty or absent: this member relies on the witness quorum alone.
   */
  witnesses?: Array<{ peerId: string; address: string }>;
}

export interface FedtwinNode {
  readonly peerId: string;
  /** Joins and takes part in rounds until the federation finishes (or stop() is called). */
  run(): Promise<NodeRunResult>;
  stop(): Promise<void>;
}

export interface NodeRunResult {
  version: number;
  hash: string;
  contributions: number;
  losses: Array<{ round: number; losses: number[] }>;
  syntheticRows: number;
}

export { runSimulation, DEFAULT_SIM_OPTIONS } from './sim.ts';
export { runEpsilonSweep } from './sweep.ts';
export type { SweepPoint } from './sweep.ts';
export type { SimOptions, SimReport, SimPrivacyReport } from './sim.ts';
export { renderHtmlReport } from './report-html.ts';
export { startDaemon, stopDaemon, waitFor, CLI_BIN } from './processes.ts';
export type { Daemon, LogEvent } from './processes.ts';
export type { ColumnHistogram } from './report-html.ts';

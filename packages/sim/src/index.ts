export { runSimulation, DEFAULT_SIM_OPTIONS } from './sim.ts';
export type { SimOptions, SimReport } from './sim.ts';
export { renderHtmlReport } from './report-html.ts';
export { startDaemon, stopDaemon, waitFor, CLI_BIN } from './processes.ts';
export type { Daemon, LogEvent } from './processes.ts';
export type { ColumnHistogram } from './report-html.ts';

export { startViewServer, type ViewServer, type ViewServerInit, type ViewRoutes } from './server.ts';
export { parseListen, isLoopback, LISTEN_PATTERN, type ListenAddress } from './listen.ts';
export { readReportSummary, type DashboardSnapshot, type ReportSummary, type BytesByProtocol } from './snapshot.ts';

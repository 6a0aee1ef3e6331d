export { binomialPmf, binomialUpperTail } from './binomial.ts';
export { oneRunPValue, oneRunEpsilonLower } from './one-run.ts';
export type { OneRunCounts } from './one-run.ts';
export { auditOneRun, countCorrect, defaultGuessCounts, twoMeansSplit, guessFromScores, maxAttainableEpsilon, ONE_RUN_METHOD } from './guess.ts';
export type { GuessCount, OneRunAudit } from './guess.ts';

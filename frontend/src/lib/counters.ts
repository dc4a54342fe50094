import { compact, percent, perMinute, rate, score, signed } from "./format";

/**
 * What the browser tests read (`window.__pulse`): live flushes and chart renders for the
 * benchmark, and the page's own formatters, so the end-to-end test formats the REST API's
 * numbers exactly as the panels do.
 */
export interface PulseCounters {
  batches: number;
  posts: number;
  chartRenders: number;
  lastChartRender: number;
  format: {
    compact: typeof compact;
    percent: typeof percent;
    signed: typeof signed;
    rate: typeof rate;
    score: typeof score;
    perMinute: typeof perMinute;
  };
}
declare global {
  interface Window {
    __pulse?: PulseCounters;
  }
}
export const counters: PulseCounters = {
  batches: 0,
  posts: 0,
  chartRenders: 0,
  lastChartRender: 0,
  format: { compact, percent, signed, rate, score, perMinute },
};
window.__pulse = counters;

export function countChartRender(): void {
  counters.chartRenders++;
  counters.lastChartRender = performance.now();
}

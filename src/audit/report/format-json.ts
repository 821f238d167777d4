import type { AuditReport } from './report.js';

/** The report as one JSON document (the shape is `AuditReport` in report.ts). */
export function formatJson(r: AuditReport): string {
  return JSON.stringify(r, null, 2) + '\n';
}

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/load.js';
import { collectDay } from './collect.js';
import { Deliveries, type ReadyReport } from './deliver.js';
import { buildReport, reportDay, reportFilename, stsPolicyKey, type Submitter } from './report.js';
import { lookupRua } from './rua.js';
import { SentState } from './sent-state.js';

export interface TlsrptFlags {
  date: string;
  org: string;
  contact: string;
  submitter?: string;
  out?: string;
  send?: boolean;
  config?: string;
  listener?: string;
  ca?: string;
  state?: string;
}

/**
 * `ticketbooth tlsrpt`: the day's TLS-RPT reports (RFC 8460) from the audit logs, one per recipient
 * domain that had sessions under a policy; written to `--out` as RFC 8460 5.3 names them, and with
 * `--send` delivered to the `rua` URIs of the domain's `_smtp._tls` record, each report to each URI
 * once (the record of deliveries is `--state`, by default `.tlsrpt-sent.json` in `--out`).
 * What happened is said on stdout, one line per domain and delivery; failures on stderr, exit 1.
 */
export async function tlsrptCommand(files: string[], f: TlsrptFlags): Promise<void> {
  if (!f.out && !f.send) throw new InvalidArgumentError('nothing to do: give --out DIR (files), --send (delivery), or both');
  const day = reportDay(f.date);
  const who: Submitter = { org: f.org, contact: f.contact, domain: submitterDomain(f) };
  const config = f.config ? loadConfig(f.config) : undefined;
  const deliveries = f.send ? new Deliveries(config, { ca: f.ca, listener: f.listener }) : undefined;
  const state = f.send ? SentState.load(f.state ?? join(f.out ?? '.', '.tlsrpt-sent.json')) : undefined;

  const collected = await collectDay(files, day);
  for (const p of collected.problems) warn(`${p.source}: ${p.error}`);
  if (collected.problems.length > 0) process.exitCode = 1;
  if (collected.sessions.size === 0) say(`${f.date}: no sessions under a policy in the audit lines read`);

  for (const domain of [...collected.sessions.keys()].sort()) {
    const sessions = collected.sessions.get(domain)!;
    for (const id of new Set(sessions.flatMap((s) => (s.type === 'sts' && s.stsId ? [s.stsId] : []))))
      if (!collected.stsPolicies.has(stsPolicyKey(domain, id)))
        warn(
          `${domain}: no mta-sts.policy line for policy id ${id} in the files read: its policy-string is empty (add the log of the day it was fetched)`,
        );
    const report = buildReport(who, domain, day, sessions, collected.stsPolicies);
    const failed = sessions.filter((s) => s.result !== 'success').length;
    const ready: ReadyReport = {
      domain,
      reportId: report['report-id'],
      filename: reportFilename(who, domain, day),
      gzipped: gzipSync(JSON.stringify(report)),
      org: who.org,
      contact: who.contact,
      submitter: who.domain,
    };
    say(`${domain}: ${report.policies.length} policies, ${sessions.length} sessions, ${failed} failed; report-id ${ready.reportId}`);
    if (f.out) {
      mkdirSync(f.out, { recursive: true });
      writeFileSync(join(f.out, ready.filename), ready.gzipped);
      say(`${domain}: wrote ${join(f.out, ready.filename)}`);
    }
    if (deliveries && state) await send(ready, deliveries, state);
  }
}

/** To every rua of the domain's TLSRPT record that has not had this report yet. */
async function send(r: ReadyReport, deliveries: Deliveries, state: SentState): Promise<void> {
  const found = await lookupRua(deliveries.resolver, r.domain);
  if ('none' in found) return say(`${r.domain}: not sent: ${found.none}`);
  for (const uri of found.ignored) say(`${r.domain}: rua ${uri} ignored (only mailto: and https: are delivered to)`);
  for (const rua of found.ruas) {
    if (state.has(r.reportId, rua.uri)) {
      say(`${r.domain}: already sent to ${rua.uri}`);
      continue;
    }
    try {
      await deliveries.deliver(r, rua);
      state.record(r.reportId, rua.uri);
      say(`${r.domain}: sent to ${rua.uri}`);
    } catch (err) {
      warn(`${r.domain}: not delivered to ${rua.uri}: ${(err as Error).message} (the next run tries again)`);
      process.exitCode = 1;
    }
  }
}

/** RFC 8460 5.3's submitter: `--submitter`, else the domain of the contact address. */
function submitterDomain(f: TlsrptFlags): string {
  const domain = f.submitter ?? /^[^@\s]+@([^@\s]+)$/.exec(f.contact)?.[1];
  if (!domain) throw new InvalidArgumentError(`--contact "${f.contact}" is not an address: give --submitter DOMAIN too`);
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$/.test(domain))
    throw new InvalidArgumentError(`submitter "${domain}" is not a domain name`);
  return domain.toLowerCase();
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function warn(line: string): void {
  process.stderr.write(`ticketbooth tlsrpt: ${line}\n`);
}

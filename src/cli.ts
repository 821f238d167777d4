#!/usr/bin/env -S node --max-semi-space-size=1
// A 1 MiB young generation (V8's default grows to 16): a client flooding commands would otherwise
// leave RSS ~20 MiB up long after it left, and the smaller one holds less at idle for no more CPU
// (docs/measured.md, "Runtime flags").
import { Command, InvalidArgumentError } from 'commander';
import { CONFIG_ENV, describeChoice, findConfig, SYSTEM_CONFIG } from './config/config-search.js';
import { loadConfig, parseConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { Service } from './service/service.js';
import { noticeFailures } from './audit/failure-notices.js';
import { configureOperatorLog, exitWhenStopped, say } from './util/operator-log.js';
import type { AuditFlags } from './audit/report/audit-command.js';
import type { TlsrptFlags } from './tlsrpt/tlsrpt-command.js';
import { healthCommand, type HealthFlags } from './admin/health-command.js';
import { reloadCommand, type ReloadFlags } from './admin/reload-command.js';
import { splitHostPort } from './net/listen-address.js';
import { SEVEN_DAYS_S } from './util/time.js';
import type { TlsmgrFlags } from './tlsmgr/command.js';
import { packageRoot } from './util/package-root.js';
import { WORKER_ENV, workerCount } from './workers/count.js';
import type { Primary } from './workers/primary.js';

/** Where `serve`, `reload` and `health` look when --config is not given (config/config-search.ts). */
const CONFIG_SEARCH = `default: $${CONFIG_ENV}, else ${SYSTEM_CONFIG}, else the package's config/default.yaml`;

const program = new Command()
  .name('ticketbooth')
  .version(ownVersion(), '-V, --version', 'print the version')
  .description('TLS egress proxy: plaintext in, TLS out, with single-use TLS 1.3 session tickets per destination')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the listeners of a config file')
  .option('-c, --config <file>', `YAML config file (${CONFIG_SEARCH})`)
  .action(async (opts: { config?: string }) => {
    // A worker forked by a primary (`workers` above 1): the primary gives it its config.
    if (process.env[WORKER_ENV] !== undefined) {
      const { runWorker } = await import('./workers/worker.js');
      return runWorker();
    }
    const choice = findConfig(opts.config);
    await run(loadConfig(choice.file), () => loadConfig(choice.file), describeChoice(choice));
  });

program
  .command('tunnel')
  .description('one plaintext-to-TLS tunnel, without a config file')
  .requiredOption('--listen <host:port>', 'where to accept plaintext clients (loopback by default)')
  .requiredOption('--connect <host:port>', 'the TLS upstream')
  .option('--starttls <protocol>', 'negotiate STARTTLS first (smtp)')
  .option('--servername <name>', 'SNI and the name the certificate must carry')
  .option('--ca <file>', 'PEM CA bundle instead of the system CAs')
  .option('--insecure', 'do not verify the upstream certificate')
  .option('--reuse <policy>', 'never | adaptive', 'never')
  .option('--audit-log <file>', 'audit log file, - for stdout')
  .action(async (opts: TunnelFlags) => {
    if (opts.insecure)
      say('warn', `--insecure: the certificate of ${opts.connect} is not checked; anyone on the path can read and change the traffic`);
    await run(tunnelConfig(opts));
  });

program
  .command('audit')
  .description('report on resumption from audit logs (stdin when no file; .gz and rotated files in the order given)')
  .argument('[file...]', 'audit log files, - for stdin')
  .option('--since <time>', 'only records at or after this ISO 8601 time')
  .option('--until <time>', 'only records before this ISO 8601 time')
  .option('--dest <dest>', 'only destinations equal to HOST:PORT or containing this text')
  .option('--format <format>', 'text | json | html', 'text')
  .option('--ticket-window <seconds>', 'how far apart two offers of one ticket still count as reuse', String(SEVEN_DAYS_S))
  .option('--max-destinations <n>', 'destinations reported one by one; further ones are pooled (bounds memory)', '20000')
  .option('-o, --output <file>', 'write the report here instead of stdout')
  .action(async (files: string[], opts: AuditFlags) => {
    // The report (and its chart code) is loaded only for this command: `serve` stays lean.
    const { auditCommand } = await import('./audit/report/audit-command.js');
    await auditCommand(files, opts);
  });

program
  .command('tlsrpt')
  .description("the day's TLS-RPT reports (RFC 8460) per recipient domain from audit logs: written to --out, delivered with --send")
  .argument('[file...]', 'audit log files (.gz and rotated ones too), - for stdin')
  .requiredOption('--date <YYYY-MM-DD>', 'the UTC day to report on')
  .requiredOption('--org <name>', "the report's organization-name")
  .requiredOption('--contact <address>', "the report's contact-info; the From and MAIL FROM of mailed reports")
  .option('--submitter <domain>', 'the submitting domain of file names and mail headers (default: the contact address domain)')
  .option('--out <dir>', 'write each report here as sender!domain!begin!end.json.gz')
  .option('--send', "deliver each report to the rua URIs of the domain's _smtp._tls record")
  .option('-c, --config <file>', 'a config: its dns.servers, mtaSts.ca and type: smtp listener (mailto: reports go through it)')
  .option('--listener <name>', 'the type: smtp listener of the config to send through (default: the first)')
  .option('--ca <file>', 'PEM CA bundle for https: rua endpoints (default: the config mtaSts.ca, else the system CAs)')
  .option('--state <file>', 'the record of deliveries made (default: .tlsrpt-sent.json in --out, else here)')
  .action(async (files: string[], opts: TlsrptFlags) => {
    const { tlsrptCommand } = await import('./tlsrpt/tlsrpt-command.js');
    await tlsrptCommand(files, opts);
  });

program
  .command('health')
  .description("probe a running ticketbooth's /readyz: exit 0 when ready, 1 otherwise (for HEALTHCHECK)")
  .option('--url <url>', "the readiness URL (default: from the config's admin.listen)")
  .option('-c, --config <file>', `the running config: /readyz on its admin.listen, or without admin its listeners bound (${CONFIG_SEARCH})`)
  .option('--timeout <ms>', 'give up after this long', '3000')
  .action(async (opts: HealthFlags) => {
    process.exitCode = await healthCommand(opts);
  });

program
  .command('reload')
  .description('make a running ticketbooth read its config file again and apply it without dropping sessions (as SIGHUP does)')
  .option('-c, --config <file>', `the running config: the admin listener to ask is its admin.listen (${CONFIG_SEARCH})`)
  .option('--url <url>', 'the reload URL instead (http://127.0.0.1:PORT/reload)')
  .action(async (opts: ReloadFlags) => {
    process.exitCode = await reloadCommand(opts);
  });

program
  .command('tlsmgr')
  .description("serve Postfix's tlsmgr protocol: smtp(8)/lmtp(8) session caching with single-use TLS 1.3 tickets (tlsmgr_service_name)")
  .requiredOption('--socket <path>', 'the socket Postfix connects to: $queue_directory/private/$tlsmgr_service_name')
  .option('--forward <path>', "the real tlsmgr's socket ($queue_directory/private/tlsmgr), for seed, tktkey and the smtpd cache")
  .option('--reuse <policy>', 'never | adaptive', 'never')
  .option('--store <type>', 'memory | redis', 'memory')
  .option('--redis-url <url>', 'with --store redis: redis://host:port[/db]')
  .option('--audit-log <file>', 'audit log file, - for stdout')
  .option('--owner <user>', "the socket's owner (Postfix's mail_owner); mode 0600", 'postfix')
  .action(async (opts: TlsmgrFlags) => {
    const { tlsmgrCommand } = await import('./tlsmgr/command.js');
    await tlsmgrCommand(opts);
  });

interface TunnelFlags {
  listen: string;
  connect: string;
  starttls?: string;
  servername?: string;
  ca?: string;
  insecure?: boolean;
  reuse: string;
  auditLog?: string;
}

function hostPort(value: string): { host: string; port: number } {
  const hp = splitHostPort(value);
  if (!hp?.host) throw new InvalidArgumentError(`"${value}" is not HOST:PORT`);
  return hp;
}

/** The one-line tunnel is a config like any other, validated by the same schema. */
function tunnelConfig(f: TunnelFlags): Config {
  const upstream = hostPort(f.connect);
  const doc = {
    listeners: [
      {
        name: 'tunnel',
        type: 'tunnel',
        listen: f.listen,
        upstream: {
          ...upstream,
          ...(f.starttls ? { starttls: f.starttls } : {}),
          ...(f.servername ? { servername: f.servername } : {}),
          ...(f.ca ? { ca: f.ca } : {}),
          verify: !f.insecure,
        },
      },
    ],
    cache: { reuse: f.reuse },
    audit: f.auditLog ? { file: f.auditLog } : {},
  };
  return parseConfig(JSON.stringify(doc), 'command line');
}

function ownVersion(): string {
  return packageRoot()?.version ?? 'unknown';
}

/** The Node.js lines tested in CI; others may work but are not supported (Node 20 is end of life). */
const SUPPORTED_NODE = [22, 24, 26];

/** Serves `config`; `source` reads it again for a reload (SIGHUP, `ticketbooth reload`); `origin` says which file it is. */
async function run(config: Config, source?: () => Config, origin?: string): Promise<void> {
  configureOperatorLog(config.log);
  if (origin) say('info', origin);
  const major = Number(process.versions.node.split('.')[0]);
  if (!SUPPORTED_NODE.includes(major)) {
    say('warn', `Node ${process.version} is not a supported runtime (tested: ${SUPPORTED_NODE.join(', ')})`);
  }
  const service = await start(config);
  if (source) service.configSource = source;
  // Read at each notice: a reload may add, remove or retype listeners.
  noticeFailures(service.audit, undefined, (name) => service.config.listeners.find((l) => l.name === name)?.type);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal while draining is an operator who will not wait: cut everything now.
      say('warn', `${signal} again: exiting without waiting for open sessions`);
      process.exit(1);
    }
    stopping = true;
    const c = service.config;
    const delay = c.drainDelaySeconds > 0 ? `/readyz says 503; listeners close in ${c.drainDelaySeconds}s, then ` : '';
    say('info', `${signal}: draining (${delay}open sessions get up to ${c.shutdownTimeoutSeconds}s)`);
    exitWhenStopped(service.stop());
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // logrotate's postrotate contract: reopen the audit file by name (lines before go to the old file);
  // and the config file read again and applied, as `ticketbooth reload` does.
  process.on('SIGHUP', () => {
    service.audit.reopen().catch((err: unknown) => say('error', `SIGHUP: reopening the audit log: ${String(err)}`));
    // The outcome, either way, is said by the service.
    if (source) service.reloadFromSource('SIGHUP').catch(() => undefined);
  });
  // A rolling restart of the workers: each is replaced by a new process (new code on disk too), then drains.
  process.on('SIGUSR2', () => {
    if (!isPrimary(service)) return say('warn', 'SIGUSR2: no workers to restart (workers: 1)');
    say('info', `SIGUSR2: replacing ${service.workerCount} workers one by one`);
    service.restartWorkers().then(
      () => say('info', `SIGUSR2: ${service.workerCount} new workers serving; the old ones drain`),
      (err: unknown) => say('error', `SIGUSR2: rolling restart stopped: ${(err as Error).message}`),
    );
  });
  // Said once the signals are handled: whoever waits for these lines may stop us at once.
  if (isPrimary(service)) say('info', `${service.workerCount} workers serving the listeners`);
  for (const l of service.listeners) {
    const a = l.address();
    say('info', `${l.name} listening on ${a.address}:${a.port}`);
  }
  if (service.tlsmgr) say('info', `tlsmgr (Postfix's session cache) listening on ${service.config.tlsmgr?.socket ?? ''}`);
  if (service.admin) {
    const a = service.admin.address();
    say('info', `admin (/metrics, /healthz, /readyz) listening on ${a.address}:${a.port}`);
  }
}

/** One process (`workers: 1`), or a primary and its workers (loaded only then): run() treats both alike. */
async function start(config: Config): Promise<Service | Primary> {
  if (workerCount(config.workers) === 1) return Service.start(config);
  const { Primary } = await import('./workers/primary.js');
  return Primary.start(config);
}

function isPrimary(s: Service | Primary): s is Primary {
  return 'restartWorkers' in s;
}

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`ticketbooth: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});

import { loadFoundConfig } from '../config/config-search.js';
import { adminUrl } from './health-command.js';

export interface ReloadFlags {
  config?: string;
  url?: string;
}

/**
 * `ticketbooth reload`: asks a running ticketbooth (its admin listener, from this host) to read its
 * config file again and apply it; prints what it did or why it did not. Exit 0 when reloaded, 1
 * when the new config was refused (the old one keeps serving) or nothing answered.
 */
export async function reloadCommand(f: ReloadFlags): Promise<number> {
  let url = f.url;
  if (!url) {
    const { file, config } = loadFoundConfig(f.config);
    const admin = config.admin;
    if (!admin) throw new Error(`${file}: no admin section, so no reload endpoint (send SIGHUP instead)`);
    url = adminUrl(admin.listen, '/reload');
  }
  try {
    const res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(30_000) });
    process.stdout.write(`${(await res.text()).trim()}\n`);
    return res.status === 200 ? 0 : 1;
  } catch (err) {
    const e = err as Error & { cause?: Error & { code?: string } };
    process.stdout.write(`${url}: ${e.cause?.code ?? e.name}: ${e.cause?.message ?? e.message}\n`);
    return 1;
  }
}

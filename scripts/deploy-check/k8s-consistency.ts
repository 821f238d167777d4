import { parseListen } from '../../src/net/listen-address.js';
import type { Config } from '../../src/config/schema.js';
import { isRecord, type CheckResult, type Finding } from './findings.js';

/** One document of a manifest file; `kind` is `apiVersion/Kind`. */
export interface Manifest {
  file: string;
  index: number;
  kind: string;
  doc: Record<string, unknown>;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (isRecord(v) ? v : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isRecord) : []);
const labelsMatch = (selector: unknown, labels: unknown): boolean =>
  isRecord(selector) && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => obj(labels)[k] === v);

/**
 * What the schema cannot see: the manifests against each other and against the ticketbooth config
 * they carry. The Deployment that mounts the config's ConfigMap must start ticketbooth on that file,
 * expose its ports, probe /readyz and /healthz on its admin port, give it longer to stop than the
 * config's shutdownTimeoutSeconds, and run non-root, read-only, without capabilities, with memory
 * requests and limits; every Service, PodDisruptionBudget and NetworkPolicy must select pods that exist.
 */
export function crossCheckKubernetes(manifests: readonly Manifest[], configs: ReadonlyMap<Manifest, Config>): CheckResult {
  const findings: Finding[] = [];
  const checked: string[] = [];
  const deployments = manifests.filter((m) => m.kind === 'apps/v1/Deployment');
  const podLabels = deployments.map((d) => obj(obj(obj(d.doc.spec).template).metadata).labels);
  const services = manifests.filter((m) => m.kind === 'v1/Service');

  for (const [cm, config] of configs) {
    const cmName = obj(cm.doc.metadata).name;
    const users = deployments.filter((d) =>
      list(obj(obj(obj(d.doc.spec).template).spec).volumes).some((v) => obj(v.configMap).name === cmName),
    );
    if (users.length === 0) findings.push({ file: cm.file, message: `no Deployment mounts ConfigMap ${String(cmName)}` });
    for (const d of users) findings.push(...checkTicketbooth(d, String(cmName), config));
    const store = config.cache.store;
    // The Sentinel form names its sentinels, which an operator or chart outside this folder runs.
    if (store.type === 'redis' && store.url !== undefined) {
      const host = /^rediss?:\/\/(?:[^@/]*@)?([^:/]+)/.exec(store.url)?.[1]?.split('.')[0];
      if (host && !services.some((s) => obj(s.doc.metadata).name === host))
        findings.push({
          file: cm.file,
          path: 'data."ticketbooth.yaml"',
          message: `cache.store.url names ${host}, which no Service here defines`,
        });
    }
    checked.push(`${cm.file}: ticketbooth config (ticketbooth's loader) and the Deployment that runs it agree`);
  }
  for (const m of manifests) {
    const spec = obj(m.doc.spec);
    const selector =
      m.kind === 'v1/Service'
        ? spec.selector
        : m.kind === 'networking.k8s.io/v1/NetworkPolicy'
          ? obj(spec.podSelector).matchLabels
          : undefined;
    const pdbSelector = m.kind === 'policy/v1/PodDisruptionBudget' ? obj(spec.selector).matchLabels : undefined;
    const sel = selector ?? pdbSelector;
    if (sel === undefined) continue;
    const i = podLabels.findIndex((labels) => labelsMatch(sel, labels));
    if (i < 0) {
      findings.push({ file: m.file, path: 'spec', message: `${m.kind} selects no pod of the Deployments here` });
      continue;
    }
    const pod = obj(obj(obj(deployments[i]?.doc.spec).template).spec);
    if (m.kind === 'v1/Service') {
      const named = new Set(list(pod.containers).flatMap((c) => list(c.ports).map((p) => p.name)));
      list(spec.ports).forEach((p, j) => {
        if (typeof p.targetPort === 'string' && !named.has(p.targetPort))
          findings.push({ file: m.file, path: `spec.ports[${j}].targetPort`, message: `no container port is named ${p.targetPort}` });
      });
    }
    if (pdbSelector !== undefined && typeof spec.minAvailable === 'number') {
      const replicas = obj(deployments[i]?.doc.spec).replicas ?? 1;
      if (typeof replicas === 'number' && spec.minAvailable >= replicas)
        findings.push({
          file: m.file,
          path: 'spec.minAvailable',
          message: `${spec.minAvailable} of ${replicas} replicas: no node could ever be drained`,
        });
    }
  }
  return { checked, findings, skipped: [] };
}

function checkTicketbooth(d: Manifest, cmName: string, config: Config): Finding[] {
  const out: Finding[] = [];
  const pod = obj(obj(obj(d.doc.spec).template).spec);
  const volume = list(pod.volumes).find((v) => obj(v.configMap).name === cmName);
  const ci = list(pod.containers).findIndex((c) => list(c.volumeMounts).some((vm) => vm.name === volume?.name));
  const c = list(pod.containers)[ci];
  const at = (path: string, message: string): void => void out.push({ file: d.file, path: `spec.template.spec.${path}`, message });
  if (!c) {
    at('containers', `no container mounts the volume of ConfigMap ${cmName}`);
    return out;
  }
  const C = `containers[${ci}]`;
  const mount = list(c.volumeMounts).find((vm) => vm.name === volume?.name);
  const args = Array.isArray(c.args) ? c.args.map(String) : ['serve', '--config', '/etc/ticketbooth/ticketbooth.yaml'];
  const configPath = args[args.indexOf('--config') + 1];
  if (configPath !== `${String(mount?.mountPath)}/ticketbooth.yaml`)
    at(`${C}.args`, `--config ${String(configPath)} is not the ConfigMap's file (${String(mount?.mountPath)}/ticketbooth.yaml)`);
  const ports = new Map(list(c.ports).map((p) => [p.name, p.containerPort]));
  for (const l of config.listeners)
    if (![...ports.values()].includes(parseListen(l.listen).port))
      at(`${C}.ports`, `listener ${l.name} (${l.listen}) has no containerPort`);
  const adminPort = config.admin ? parseListen(config.admin.listen).port : undefined;
  if (adminPort === undefined) at(C, 'the config has no admin section, so the probes have no /readyz or /healthz to ask');
  for (const [probe, path] of [
    ['readinessProbe', '/readyz'],
    ['livenessProbe', '/healthz'],
  ] as const) {
    const get = obj(obj(c[probe]).httpGet);
    const port = typeof get.port === 'string' ? ports.get(get.port) : get.port;
    if (get.path !== path || port !== adminPort) at(`${C}.${probe}`, `must GET ${path} on the admin port (${String(adminPort)})`);
  }
  const preStop = obj(obj(c.lifecycle).preStop);
  const command = obj(preStop.exec).command;
  const pause = Array.isArray(command) && command[0] === 'sleep' ? Number(command[1]) : Number(obj(preStop.sleep).seconds ?? 0);
  const grace = typeof pod.terminationGracePeriodSeconds === 'number' ? pod.terminationGracePeriodSeconds : 30;
  if (grace <= pause + config.shutdownTimeoutSeconds)
    at(
      'terminationGracePeriodSeconds',
      `${grace} s is not more than preStop (${pause} s) + shutdownTimeoutSeconds (${config.shutdownTimeoutSeconds} s)`,
    );
  const sc = obj(c.securityContext);
  if (obj(pod.securityContext).runAsNonRoot !== true && sc.runAsNonRoot !== true) at('securityContext.runAsNonRoot', 'must be true');
  if (sc.readOnlyRootFilesystem !== true) at(`${C}.securityContext.readOnlyRootFilesystem`, 'must be true');
  if (sc.allowPrivilegeEscalation !== false) at(`${C}.securityContext.allowPrivilegeEscalation`, 'must be false');
  if (!JSON.stringify(obj(sc.capabilities).drop ?? []).includes('"ALL"')) at(`${C}.securityContext.capabilities.drop`, 'must drop ALL');
  const res = obj(c.resources);
  if (!obj(res.requests).memory || !obj(res.limits).memory) at(`${C}.resources`, 'memory requests and limits are required');
  return out;
}

/**
 * deploy/k8s/: every document parses, and the fields that make promstream work in a cluster are right
 * and agree with the server's own defaults, the Dockerfile, the alert rules and the protocol.
 * (No cluster here: kubectl's server-side validation is not run.)
 */
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { SESSION_QUERY_PARAM } from '../../protocol/index.js';
import { SERVE_OPTIONS, envName } from '../../server/setup/option-table.js';
import { parseBytes, parseDuration, readOptionText as convert } from '../../server/setup/option-text.js';
import { loadWhitelist } from '../../server/config/load-whitelist.js';
import { DEFAULTS } from '../../server/setup/options.js';
import { REPO_ROOT } from '../support/spawn-cli.js';
import { parseDockerfile } from './dockerfile.js';

const K8S_DIR = path.join(REPO_ROOT, 'deploy/k8s');

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  data?: Record<string, string>;
}
interface Probe {
  httpGet: { path: string; port: string | number };
  periodSeconds: number;
  failureThreshold: number;
}
interface Container {
  image: string;
  args: string[];
  env: { name: string; value: string }[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
  lifecycle: { preStop: { exec: { command: string[] } } };
  resources: { requests: Record<string, string | number>; limits: Record<string, string> };
  securityContext: Record<string, unknown>;
  volumeMounts: { name: string; mountPath: string }[];
}
interface Deployment extends Doc {
  spec: {
    selector: { matchLabels: Record<string, string> };
    strategy: { rollingUpdate: unknown };
    template: {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
      spec: { terminationGracePeriodSeconds: number; securityContext: Record<string, unknown>; containers: Container[]; volumes: { name: string; configMap?: { name: string } }[] };
    };
  };
}
interface Service extends Doc {
  spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[] };
}
interface Pdb extends Doc {
  spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable?: number; minAvailable?: number };
}
interface Hpa extends Doc {
  spec: { scaleTargetRef: unknown; minReplicas: number; maxReplicas: number };
}
interface Ingress extends Doc {
  spec: { rules: { http: { paths: { path: string; pathType: string; backend: { service: unknown } }[] } }[] };
}

async function loadDocuments(): Promise<{ file: string; doc: Doc }[]> {
  const out: { file: string; doc: Doc }[] = [];
  for (const file of (await readdir(K8S_DIR)).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    const text = await readFile(path.join(K8S_DIR, file), 'utf8');
    for (const document of parseAllDocuments(text)) {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors.map((e) => e.message).join('; ')}`);
      const doc = document.toJS() as Doc | null;
      if (doc !== null) out.push({ file, doc });
    }
  }
  return out;
}

const docs = await loadDocuments();
/** The one document of a kind, typed as what the tests read of it (YAML is unchecked until the asserts). */
function only<T extends Doc>(kind: string): T {
  const found = docs.filter((d) => d.doc.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!.doc as T;
}
const deployment = only<Deployment>('Deployment');
const pod = deployment.spec.template;
const container = pod.spec.containers[0]!;
const env = new Map<string, string>(container.env.map((e) => [e.name, e.value]));
const portOf = (name: string): number | undefined => container.ports.find((p) => p.name === name)?.containerPort;

describe('deploy/k8s', () => {
  it('parses: every document has apiVersion, kind and a name, and the set is complete', () => {
    for (const { file, doc } of docs) {
      expect(doc.apiVersion, file).toMatch(/\w/);
      expect(doc.metadata.name, file).toMatch(/^[a-z0-9-]+$/);
      expect(doc.metadata.labels?.['app.kubernetes.io/name'], `${file} ${doc.kind}`).toBe('promstream');
    }
    expect(docs.map((d) => d.doc.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'PodDisruptionBudget', 'Service']);
  });

  it('sets every PROMSTREAM_* variable to an option that exists, with a value the server accepts', () => {
    const byEnv = new Map(SERVE_OPTIONS.map((o) => [envName(o.flag), o]));
    for (const [name, value] of env) {
      if (!name.startsWith('PROMSTREAM_')) continue;
      const spec = byEnv.get(name);
      expect(spec, `${name} is not a promstream serve option`).toBeDefined();
      expect(() => convert(spec!, value, name)).not.toThrow();
    }
    // The image's ENTRYPOINT is tini; args is the command, and `promstream` is the package's bin.
    expect(container.args).toEqual(['promstream', 'serve']);
    expect(container.image).toMatch(/:[0-9][\w.-]*$/);
  });

  it('exposes the public and metrics ports the server listens on, and Prometheus finds the metrics port by annotation', () => {
    const metricsPort = Number(env.get('PROMSTREAM_METRICS_PORT') ?? DEFAULTS.metricsPort);
    expect(portOf('http')).toBe(Number(env.get('PROMSTREAM_PORT') ?? DEFAULTS.port));
    expect(portOf('metrics')).toBe(metricsPort);
    expect(pod.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(metricsPort), 'prometheus.io/path': '/metrics' });
    // The Dockerfile's EXPOSE says the same.
    return readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8').then((text) => {
      const expose = parseDockerfile(text).stages.at(-1)!.instructions.find((i) => i.keyword === 'EXPOSE')!;
      expect(expose.args.split(/\s+/).map(Number).sort()).toEqual([portOf('http'), portOf('metrics')].sort());
    });
  });

  it('probes readiness on /readyz and liveness on /healthz of the metrics port', () => {
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    // Liveness must not kill a pod that is merely draining (/readyz 503): it is slower and asks /healthz.
    expect(container.livenessProbe.periodSeconds * container.livenessProbe.failureThreshold).toBeGreaterThan(container.readinessProbe.periodSeconds * container.readinessProbe.failureThreshold);
  });

  it('gives the pod time for preStop plus the whole drain before SIGKILL', () => {
    const command = container.lifecycle.preStop.exec.command;
    expect(command[0]).toBe('sleep');
    const preStopMs = parseDuration(command[1]!);
    const drainMs = parseDuration(env.get('PROMSTREAM_DRAIN_WINDOW') ?? `${DEFAULTS.drainWindowMs}ms`);
    expect(preStopMs).toBeGreaterThan(0);
    expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(preStopMs + drainMs + 5_000);
    // A rolling update keeps capacity: a new pod is ready before an old one drains.
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
  });

  it('runs as the image user, non-root, read-only, without privileges', () => {
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    return readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8').then((text) => {
      // uid 1000 is `node` in node:20-bookworm-slim.
      expect(parseDockerfile(text).stages.at(-1)!.instructions.find((i) => i.keyword === 'USER')!.args).toBe('node');
    });
  });

  it('requests resources, and the memory limit is the one the alert and docker-compose.yml assume', async () => {
    const { requests, limits } = container.resources;
    expect(requests.cpu).toBeDefined();
    expect(requests.memory).toBeDefined();
    const limitBytes = parseBytes(limits.memory!.replace(/i$/, 'iB'));
    expect(limitBytes).toBe(512 * 1024 * 1024);
    const rules = await readFile(path.join(REPO_ROOT, 'deploy/prometheus/rules.yml'), 'utf8');
    const constant = /process_resident_memory_bytes\{[^}]*\}\) \/ \((\d+) \* 1024 \* 1024\)/.exec(rules);
    expect(Number(constant?.[1]) * 1024 * 1024).toBe(limitBytes);
    const compose = parse(await readFile(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: { aggregator: { mem_limit: string; environment: Record<string, string> } } };
    expect(parseBytes(compose.services.aggregator.mem_limit.replace(/m$/, 'MiB'))).toBe(limitBytes);
    // The V8 heap cap leaves room below the limit, in both.
    for (const nodeOptions of [env.get('NODE_OPTIONS'), compose.services.aggregator.environment.NODE_OPTIONS]) {
      const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions ?? '')?.[1]);
      expect(heapMiB * 1024 * 1024).toBeLessThan(limitBytes * 0.8);
    }
    // At most one core: the most one Node process can use (see the comment in deployment.yaml).
    const cpu = String(requests.cpu);
    const cores = cpu.endsWith('m') ? Number(cpu.slice(0, -1)) / 1000 : Number(cpu);
    expect(cores).toBeGreaterThan(0);
    expect(cores).toBeLessThanOrEqual(1);
    expect(limits.cpu).toBeUndefined();
  });

  it('selects the same pods everywhere: Deployment, Service, PodDisruptionBudget; the HPA scales the Deployment', () => {
    const labels = pod.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    const service = only<Service>('Service');
    expect(service.spec.selector).toEqual(labels);
    for (const p of service.spec.ports) expect(portOf(p.targetPort), p.name).toBe(p.port);
    const pdb = only<Pdb>('PodDisruptionBudget');
    expect(pdb.spec.selector.matchLabels).toEqual(labels);
    expect(pdb.spec.maxUnavailable ?? pdb.spec.minAvailable).toBeDefined();
    const hpa = only<Hpa>('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
  });

  it('routes the WebSocket through the ingress with timeouts above the ping interval, hashing on the session id the protocol puts in the URL', async () => {
    const ingress = only<Ingress>('Ingress');
    const annotations = ingress.metadata.annotations!;
    const idleTimeoutMs = parseDuration(env.get('PROMSTREAM_IDLE_TIMEOUT') ?? `${DEFAULTS.idleTimeoutMs}ms`);
    // The server pings a silent client after half the idle timeout; nginx must wait longer than that
    // (and than a client's flush interval) before it calls the connection dead.
    for (const key of ['nginx.ingress.kubernetes.io/proxy-read-timeout', 'nginx.ingress.kubernetes.io/proxy-send-timeout']) {
      expect(Number(annotations[key]) * 1000, key).toBeGreaterThan(Math.max(idleTimeoutMs, DEFAULTS.flushIntervalMs));
    }
    const paths = ingress.spec.rules.flatMap((r) => r.http.paths);
    // Everything public: /ws, the browser script under its hashed names, /healthz.
    expect(paths.map((p) => [p.path, p.pathType])).toEqual([['/', 'Prefix']]);
    for (const p of paths) expect(p.backend.service).toEqual({ name: only<Service>('Service').metadata.name, port: { name: 'http' } });
    // The hash key: the client's route key, else its session id, else a random one (an empty key would
    // send every new client to the same pod). The maps must be the ones the comment tells users to add,
    // on the query parameter the protocol puts the session id in.
    expect(annotations['nginx.ingress.kubernetes.io/upstream-hash-by']).toBe('$promstream_route');
    const text = await readFile(path.join(K8S_DIR, 'ingress.yaml'), 'utf8');
    const snippet = text.split('\n').filter((l) => l.startsWith('#')).map((l) => l.replace(/^#\s*/, '')).join(' ').replace(/\s+/g, ' ');
    expect(snippet).toContain(`map $arg_route $promstream_route_or_session { "" $arg_${SESSION_QUERY_PARAM}; default $arg_route; }`);
    expect(snippet).toContain('map $promstream_route_or_session $promstream_route { "" $request_id; default $promstream_route_or_session; }');
    // The same precedence as deploy/nginx/promstream.conf, which test/deploy/nginx.test.ts runs.
    const nginx = await readFile(path.join(REPO_ROOT, 'deploy/nginx/promstream.conf'), 'utf8');
    expect(nginx.replace(/\s+/g, ' ')).toContain(`map $arg_route $promstream_route { "" $arg_${SESSION_QUERY_PARAM}; default $arg_route; }`);
    expect(text).toMatch(/at-least-once/);
  });

  describe('the ConfigMap whitelist', () => {
    let dir = '';
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('loads, mounted the way the kubelet mounts a ConfigMap (symlinks into ..data), and is the demo whitelist', async () => {
      const configMap = only('ConfigMap');
      const mount = container.volumeMounts.find((m) => m.mountPath === env.get('PROMSTREAM_CONFIG'));
      expect(mount, 'PROMSTREAM_CONFIG is the mounted ConfigMap').toBeDefined();
      const volume = pod.spec.volumes.find((v) => v.name === mount!.name);
      expect(volume?.configMap?.name).toBe(configMap.metadata.name);

      // The kubelet's atomic writer: files in a timestamped directory, ..data → it, and one symlink per key.
      dir = await mkdtemp(path.join(tmpdir(), 'promstream-configmap-'));
      const stamped = path.join(dir, '..2026_01_01_00_00_00.000000001');
      await mkdir(stamped);
      for (const [key, value] of Object.entries(configMap.data!)) await writeFile(path.join(stamped, key), value);
      await symlink(path.basename(stamped), path.join(dir, '..data'));
      for (const key of Object.keys(configMap.data!)) await symlink(path.join('..data', key), path.join(dir, key));
      const whitelist = await loadWhitelist([dir]);
      expect(whitelist.files).toEqual(Object.keys(configMap.data!).map((k) => path.join(dir, k)));
      const demo = JSON.parse(await readFile(path.join(REPO_ROOT, 'examples/demo-whitelist.json'), 'utf8')) as unknown;
      expect(JSON.parse(configMap.data!['whitelist.json']!)).toEqual(demo);
    });
  });
});

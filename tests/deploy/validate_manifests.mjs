// Validates the Kubernetes manifests under deploy/kubernetes, offline:
//   1. each YAML document against the Kubernetes API schema of its kind, with the model
//      classes of the npm packages kubernetes-models (Deployment, ConfigMap, Secret) and
//      @kubernetes-models/prometheus-operator (PodMonitor); a kind without a model fails;
//   2. the example as a whole: pgsidecar is a native sidecar, its probes hit /healthz and
//      /readyz on the [http] port of the ConfigMap's pgsidecar.toml, every ${VAR} of that
//      file comes from the sidecar's environment (from a Secret that has the key), the
//      app's DATABASE_URL points at pgsidecar in the pod, terminationGracePeriodSeconds
//      exceeds shutdown_delay + drain_timeout, the PodMonitor selects the pods and names
//      the sidecar's metrics port.
// The schemas do not forbid unknown fields (a misspelt key is ignored by them), which is
// why the checks of part 2 look for every field that matters by name.
//
//   node validate_manifests.mjs DIR [--config-out FILE]
// prints one line per document and check, writes the ConfigMap's pgsidecar.toml to FILE
// (for `pgsidecar --config FILE --check`), and exits 1 when anything is invalid.
// validate_manifests.test.mjs feeds it broken copies and expects each to fail.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { YAML, TOML, Deployment, ConfigMap, Secret, PodMonitor } from "./deps.mjs";

const MODELS = new Map([
  ["apps/v1 Deployment", Deployment],
  ["v1 ConfigMap", ConfigMap],
  ["v1 Secret", Secret],
  ["monitoring.coreos.com/v1 PodMonitor", PodMonitor],
]);

export const CONFIG_KEY = "pgsidecar.toml";

// Every YAML document of every .yaml/.yml file under dir, in file order:
// { file, index, object, errors }. A document that does not parse has errors.
export function loadDocuments(dir) {
  const files = fs
    .readdirSync(dir, { recursive: true })
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
  const documents = [];
  for (const file of files) {
    const parsed = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), { uniqueKeys: true });
    const list = Array.isArray(parsed) ? parsed : [parsed];
    list.forEach((doc, index) => {
      const errors = [...doc.errors, ...doc.warnings].map((e) => `YAML: ${e.message.split("\n")[0]}`);
      const object = errors.length ? null : doc.toJS();
      if (object === null && errors.length === 0) return; // an empty document
      documents.push({ file, index, object, errors });
    });
  }
  return documents;
}

// A Prometheus configuration file (prometheus-scrape.yaml), not a Kubernetes object:
// tests/deploy/run.sh checks it with promtool.
export function isPrometheusConfig(object) {
  return object && typeof object === "object" && "scrape_configs" in object && !("kind" in object);
}

// Schema errors of one object: [] when valid.
export function schemaErrors(object) {
  if (!object || typeof object !== "object" || Array.isArray(object)) return ["not a mapping"];
  const key = `${object.apiVersion} ${object.kind}`;
  const Model = MODELS.get(key);
  if (!Model) {
    return [`no schema for apiVersion "${object.apiVersion}", kind "${object.kind}" (known: ${[...MODELS.keys()].join(", ")})`];
  }
  try {
    new Model(object).validate();
    return [];
  } catch (e) {
    const details = Array.isArray(e.errors)
      ? e.errors.map((x) => `${x.instancePath || "/"} ${x.message}`)
      : [e.message];
    return details;
  }
}

// "500ms", "10s", "2m", "1h", "0" (docs/configuration.md) in seconds.
export function durationSeconds(text) {
  if (text === 0 || text === "0") return 0;
  const m = /^(\d+)(ms|s|m|h)$/.exec(String(text));
  if (!m) throw new Error(`invalid duration ${JSON.stringify(text)}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}

// ${NAME} references in pgsidecar.toml text ($${ is a literal).
export function envReferences(text) {
  const names = new Set();
  for (const m of text.matchAll(/(\$*)\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    if (m[1].length % 2 === 0) names.add(m[2]);
  }
  return [...names];
}

const byKind = (objects, kind) => objects.filter((o) => o && o.kind === kind);

function resolvePort(container, port) {
  if (typeof port === "number") return port;
  const named = (container.ports || []).find((p) => p.name === port);
  return named ? named.containerPort : undefined;
}

// The cross-document checks of the sidecar example: a list of problems, [] when none.
// Returns { errors, config } where config is the ConfigMap's pgsidecar.toml text.
export function exampleErrors(objects) {
  const errors = [];
  const fail = (message) => errors.push(message);
  const deployments = byKind(objects, "Deployment");
  if (deployments.length !== 1) {
    fail(`expected one Deployment, found ${deployments.length}`);
    return { errors, config: null };
  }
  const deployment = deployments[0];
  const pod = deployment.spec?.template?.spec ?? {};
  const podLabels = deployment.spec?.template?.metadata?.labels ?? {};
  const sidecars = (pod.initContainers || []).filter((c) => c.restartPolicy === "Always");
  const sidecar = sidecars.find((c) => String(c.image).includes("pgsidecar"));
  if (!sidecar) {
    fail("no native sidecar: no initContainer with restartPolicy: Always runs a pgsidecar image");
    return { errors, config: null };
  }
  const where = `initContainers[${sidecar.name}]`;

  // The configuration: a ConfigMap volume mounted where the image reads it.
  const mount = (sidecar.volumeMounts || []).find(
    (m) => m.mountPath === "/etc/pgsidecar" || m.mountPath === `/etc/pgsidecar/${CONFIG_KEY}`,
  );
  const volume = mount && (pod.volumes || []).find((v) => v.name === mount.name);
  let config = null;
  if (!volume?.configMap) {
    fail(`${where}: no ConfigMap volume mounted at /etc/pgsidecar`);
  } else {
    const configMap = byKind(objects, "ConfigMap").find((c) => c.metadata?.name === volume.configMap.name);
    let key = CONFIG_KEY;
    if (mount.subPath) key = mount.subPath;
    const item = (volume.configMap.items || []).find((i) => i.path === CONFIG_KEY);
    if (volume.configMap.items && !item && !mount.subPath) {
      fail(`volume ${volume.name}: its items give no file ${CONFIG_KEY}`);
    }
    if (item) key = item.key;
    if (!configMap) fail(`ConfigMap ${volume.configMap.name} (volume ${volume.name}) is not among the manifests`);
    else if (typeof configMap.data?.[key] !== "string") fail(`ConfigMap ${configMap.metadata.name} has no data key ${key}`);
    else config = configMap.data[key];
  }
  if (config === null) return { errors, config };

  let toml;
  try {
    toml = TOML.parse(config);
  } catch (e) {
    fail(`${CONFIG_KEY}: ${e.message.split("\n")[0]}`);
    return { errors, config };
  }
  const listenPort = toml.listen?.port ?? 6432;
  const httpPort = toml.http?.port ?? 0;
  const httpAddress = toml.http?.address ?? "127.0.0.1";
  if (!httpPort) fail(`${CONFIG_KEY}: [http] port is not set: the probes and Prometheus need it`);
  if (!["0.0.0.0", "::"].includes(httpAddress)) {
    fail(`${CONFIG_KEY}: [http] address is ${httpAddress}: the kubelet probes the pod's IP, so use "0.0.0.0"`);
  }

  // Ports and probes.
  const containerPorts = (sidecar.ports || []).map((p) => p.containerPort);
  if (!containerPorts.includes(httpPort)) fail(`${where}: no containerPort ${httpPort} ([http] port)`);
  const probes = [
    ["startupProbe", "/healthz"],
    ["livenessProbe", "/healthz"],
    ["readinessProbe", "/readyz"],
  ];
  for (const [name, expected] of probes) {
    const probe = sidecar[name];
    if (!probe?.httpGet) {
      fail(`${where}: no ${name} with httpGet`);
      continue;
    }
    const probePath = String(probe.httpGet.path || "/").split("?")[0];
    if (probePath !== expected) fail(`${where}: ${name} gets ${probe.httpGet.path}, expected ${expected}`);
    const port = resolvePort(sidecar, probe.httpGet.port);
    if (port !== httpPort) fail(`${where}: ${name} port ${probe.httpGet.port} is not the [http] port ${httpPort}`);
  }

  // Every ${VAR} of the configuration from the sidecar's environment.
  const env = new Map((sidecar.env || []).map((e) => [e.name, e]));
  const secrets = byKind(objects, "Secret");
  for (const name of envReferences(config)) {
    const variable = env.get(name);
    if (!variable) {
      fail(`${where}: ${CONFIG_KEY} reads \${${name}}, which the container's env does not set`);
      continue;
    }
    const ref = variable.valueFrom?.secretKeyRef;
    if (ref) {
      const secret = secrets.find((s) => s.metadata?.name === ref.name);
      const keys = new Set([...Object.keys(secret?.data || {}), ...Object.keys(secret?.stringData || {})]);
      if (!secret) fail(`${where}: env ${name} refers to Secret ${ref.name}, which is not among the manifests`);
      else if (!keys.has(ref.key)) fail(`${where}: env ${name} refers to key ${ref.key}, which Secret ${ref.name} lacks`);
    } else if (variable.value === undefined && !variable.valueFrom) {
      fail(`${where}: env ${name} has neither value nor valueFrom`);
    }
  }
  for (const [resource, kind] of [["cpu", "requests"], ["memory", "requests"], ["memory", "limits"]]) {
    if (!sidecar.resources?.[kind]?.[resource]) fail(`${where}: no resources.${kind}.${resource}`);
  }

  // The app reaches pgsidecar in the pod.
  const urls = (pod.containers || []).flatMap((c) =>
    (c.env || []).map((e, i) => ({ container: c, index: i, variable: e })).filter((x) => x.variable.name === "DATABASE_URL"),
  );
  if (urls.length === 0) fail("no container sets DATABASE_URL");
  for (const { container, index, variable } of urls) {
    const value = String(variable.value ?? "");
    const m = /^postgres(?:ql)?:\/\/[^@/]+@(127\.0\.0\.1|localhost):(\d+)\//.exec(value);
    if (!m) fail(`containers[${container.name}]: DATABASE_URL ${value} does not point at 127.0.0.1`);
    else if (Number(m[2]) !== listenPort) fail(`containers[${container.name}]: DATABASE_URL port ${m[2]} is not the [listen] port ${listenPort}`);
    const earlier = new Set((container.env || []).slice(0, index).map((e) => e.name));
    for (const ref of value.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
      if (!earlier.has(ref[1])) fail(`containers[${container.name}]: DATABASE_URL uses $(${ref[1]}), not defined before it`);
    }
  }

  // Shutdown: the pod's grace period must cover pgsidecar's drain.
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  let drain = 10;
  let delay = 0;
  try {
    drain = durationSeconds(toml.listen?.drain_timeout ?? "10s");
    delay = durationSeconds(toml.listen?.shutdown_delay ?? toml.shutdown_delay ?? 0);
  } catch (e) {
    fail(`${CONFIG_KEY}: ${e.message}`);
  }
  if (!(grace > delay + drain)) {
    fail(`terminationGracePeriodSeconds ${grace} is not above shutdown_delay ${delay} s + drain_timeout ${drain} s`);
  }
  const annotations = deployment.spec?.template?.metadata?.annotations ?? {};
  if ("prometheus.io/port" in annotations && Number(annotations["prometheus.io/port"]) !== httpPort) {
    fail(`pod annotation prometheus.io/port ${annotations["prometheus.io/port"]} is not the [http] port ${httpPort}`);
  }

  // The PodMonitor scrapes the sidecar's metrics port of these pods.
  for (const monitor of byKind(objects, "PodMonitor")) {
    const name = `PodMonitor ${monitor.metadata?.name}`;
    const selector = monitor.spec?.selector?.matchLabels ?? {};
    if (Object.keys(selector).length === 0) fail(`${name}: selector.matchLabels is empty`);
    for (const [k, v] of Object.entries(selector)) {
      if (podLabels[k] !== v) fail(`${name}: selects ${k}=${v}, which the Deployment's pods lack`);
    }
    const endpoints = monitor.spec?.podMetricsEndpoints ?? [];
    if (endpoints.length === 0) fail(`${name}: no podMetricsEndpoints`);
    for (const endpoint of endpoints) {
      if (resolvePort(sidecar, endpoint.port) !== httpPort) {
        fail(`${name}: port ${endpoint.port} is not a port of ${where} with the [http] port ${httpPort}`);
      }
      if ((endpoint.path ?? "/metrics") !== "/metrics") fail(`${name}: path ${endpoint.path}, expected /metrics`);
    }
  }
  return { errors, config };
}

// Validates documents ({ file, index, object, errors } as loadDocuments gives them).
// Returns { lines, failed, config }.
export function validateDocuments(documents) {
  const lines = [];
  let failed = 0;
  const objects = [];
  for (const doc of documents) {
    const where = `${path.basename(doc.file)}#${doc.index}`;
    if (doc.errors.length) {
      failed++;
      lines.push(`FAIL ${where}: ${doc.errors.join("; ")}`);
      continue;
    }
    if (isPrometheusConfig(doc.object)) {
      lines.push(`skip ${where}: a Prometheus scrape configuration, not a Kubernetes object (promtool checks it)`);
      continue;
    }
    const errors = schemaErrors(doc.object);
    const name = `${doc.object?.kind}/${doc.object?.metadata?.name}`;
    if (errors.length) {
      failed++;
      lines.push(`FAIL ${where} ${name}: ${errors.join("; ")}`);
    } else {
      lines.push(`ok   ${where} ${name}: valid ${doc.object.apiVersion} ${doc.object.kind}`);
    }
    objects.push(doc.object);
  }
  const { errors, config } = exampleErrors(objects);
  for (const e of errors) lines.push(`FAIL example: ${e}`);
  if (errors.length === 0) lines.push("ok   example: native sidecar, probes, config, secrets, DATABASE_URL, grace period, PodMonitor");
  failed += errors.length;
  return { lines, failed, config };
}

function main(argv) {
  const args = argv.slice(2);
  const outIndex = args.indexOf("--config-out");
  let configOut = null;
  if (outIndex >= 0) {
    configOut = args[outIndex + 1];
    args.splice(outIndex, 2);
  }
  if (args.length !== 1 || !configOut && outIndex >= 0) {
    console.error("usage: node validate_manifests.mjs DIR [--config-out FILE]");
    return 2;
  }
  const documents = loadDocuments(args[0]);
  if (documents.length === 0) {
    console.error(`no YAML documents under ${args[0]}`);
    return 1;
  }
  const { lines, failed, config } = validateDocuments(documents);
  for (const line of lines) console.log(line);
  if (configOut && config !== null) fs.writeFileSync(configOut, config);
  console.log(`manifests: ${documents.length} documents, ${failed} problem(s)`);
  return failed ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  process.exitCode = main(process.argv);
}

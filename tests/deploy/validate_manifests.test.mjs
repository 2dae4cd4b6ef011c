// validate_manifests.mjs must fail on broken manifests: each test breaks one thing in a
// copy of deploy/kubernetes and expects the problem it names. Run: node --test tests/deploy/
import test from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadDocuments, validateDocuments, schemaErrors, envReferences, durationSeconds } from "./validate_manifests.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const manifestDir = path.resolve(here, "../../deploy/kubernetes");
const shipped = loadDocuments(manifestDir);

// The documents with one change: edit(objects by kind) mutates a deep copy.
function broken(edit) {
  const docs = structuredClone(shipped);
  const kinds = {};
  for (const d of docs) if (d.object?.kind) kinds[d.object.kind] = d.object;
  edit(kinds, docs);
  return validateDocuments(docs);
}

const sidecarOf = (k) => k.Deployment.spec.template.spec.initContainers[0];
const appOf = (k) => k.Deployment.spec.template.spec.containers[0];

function expectFailure(result, pattern) {
  assert.ok(result.failed > 0, `expected a failure matching ${pattern}; got:\n${result.lines.join("\n")}`);
  assert.ok(
    result.lines.some((l) => l.startsWith("FAIL") && pattern.test(l)),
    `no FAIL line matches ${pattern}:\n${result.lines.join("\n")}`,
  );
}

test("the shipped manifests are valid", () => {
  const result = validateDocuments(shipped);
  assert.equal(result.failed, 0, result.lines.join("\n"));
  const kinds = shipped.map((d) => d.object?.kind).filter(Boolean).sort();
  assert.deepEqual(kinds, ["ConfigMap", "Deployment", "PodMonitor", "Secret"]);
  assert.match(result.config, /^\[http\]$/m);
});

test("schema: a containerPort given as a string", () => {
  expectFailure(
    broken((k) => (sidecarOf(k).ports[1].containerPort = "9930")),
    /Deployment\/app: .*containerPort must be integer/,
  );
});

test("schema: a Deployment without a selector", () => {
  expectFailure(broken((k) => delete k.Deployment.spec.selector), /Deployment\/app: .*selector/);
});

test("schema: a container without a name", () => {
  expectFailure(broken((k) => delete appOf(k).name), /Deployment\/app: .*name/);
});

test("schema: replicas as a string", () => {
  expectFailure(broken((k) => (k.Deployment.spec.replicas = "three")), /Deployment\/app: .*replicas must be integer/);
});

test("schema: a ConfigMap value that is not a string", () => {
  expectFailure(broken((k) => (k.ConfigMap.data.port = 6432)), /ConfigMap\/pgsidecar-config: .*must be string/);
});

test("schema: a PodMonitor port given as a number", () => {
  expectFailure(
    broken((k) => (k.PodMonitor.spec.podMetricsEndpoints[0].port = 9930)),
    /PodMonitor\/pgsidecar: .*port must be string/,
  );
});

test("schema: an unknown kind has no model", () => {
  expectFailure(
    broken((k, docs) => docs.push({ file: "extra.yaml", index: 0, errors: [], object: { apiVersion: "v1", kind: "Gizmo", metadata: { name: "g" } } })),
    /no schema for apiVersion "v1", kind "Gizmo"/,
  );
});

test("YAML: a duplicate key is an error", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgsidecar-manifests-"));
  try {
    fs.writeFileSync(path.join(dir, "dup.yaml"), "apiVersion: v1\nkind: Secret\nkind: Secret\nmetadata:\n  name: x\n");
    const docs = loadDocuments(dir);
    expectFailure(validateDocuments(docs), /dup\.yaml#0: YAML: .*[Mm]ap keys must be unique/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("example: pgsidecar as a plain init container is not a sidecar", () => {
  expectFailure(broken((k) => delete sidecarOf(k).restartPolicy), /no native sidecar/);
});

test("example: readiness on /healthz", () => {
  expectFailure(
    broken((k) => (sidecarOf(k).readinessProbe.httpGet.path = "/healthz")),
    /readinessProbe gets \/healthz, expected \/readyz/,
  );
});

test("example: a misspelt probe is a missing probe", () => {
  expectFailure(
    broken((k) => {
      const s = sidecarOf(k);
      s.livenesProbe = s.livenessProbe;
      delete s.livenessProbe;
    }),
    /no livenessProbe with httpGet/,
  );
});

test("example: a probe on the wrong port", () => {
  expectFailure(broken((k) => (sidecarOf(k).startupProbe.httpGet.port = "postgres")), /startupProbe port postgres is not the \[http\] port 9930/);
});

test("example: [http] on loopback cannot be probed", () => {
  expectFailure(
    broken((k) => (k.ConfigMap.data["pgsidecar.toml"] = k.ConfigMap.data["pgsidecar.toml"].replace('address = "0.0.0.0"', 'address = "127.0.0.1"'))),
    /\[http\] address is 127\.0\.0\.1/,
  );
});

test("example: a ${VAR} the container does not set", () => {
  expectFailure(
    broken((k) => (sidecarOf(k).env = sidecarOf(k).env.filter((e) => e.name !== "ADMIN_PASSWORD"))),
    /reads \$\{ADMIN_PASSWORD\}, which the container's env does not set/,
  );
});

test("example: a Secret without the key the env refers to", () => {
  expectFailure(broken((k) => delete k.Secret.stringData["admin-password"]), /refers to key admin-password, which Secret app-db lacks/);
});

test("example: DATABASE_URL past pgsidecar", () => {
  expectFailure(
    broken((k) => (appOf(k).env.find((e) => e.name === "DATABASE_URL").value = "postgres://app:x@10.0.0.5:5432/app")),
    /DATABASE_URL .* does not point at 127\.0\.0\.1/,
  );
});

test("example: DATABASE_URL using a variable defined after it", () => {
  expectFailure(
    broken((k) => appOf(k).env.reverse()),
    /DATABASE_URL uses \$\(APP_PASSWORD\), not defined before it/,
  );
});

test("example: a grace period shorter than the drain", () => {
  expectFailure(
    broken((k) => (k.Deployment.spec.template.spec.terminationGracePeriodSeconds = 10)),
    /terminationGracePeriodSeconds 10 is not above shutdown_delay 0 s \+ drain_timeout 10 s/,
  );
});

test("example: the PodMonitor selects other pods", () => {
  expectFailure(
    broken((k) => (k.PodMonitor.spec.selector.matchLabels = { "app.kubernetes.io/name": "other" })),
    /selects app\.kubernetes\.io\/name=other, which the Deployment's pods lack/,
  );
});

test("example: the ConfigMap the volume names is missing", () => {
  expectFailure(
    broken((k, docs) => docs.splice(docs.findIndex((d) => d.object?.kind === "ConfigMap"), 1)),
    /ConfigMap pgsidecar-config .* is not among the manifests/,
  );
});

test("helpers", () => {
  assert.deepEqual(schemaErrors({ apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, stringData: { a: "b" } }), []);
  assert.deepEqual(envReferences('a = "${A}" b = "$${B}" c = "$$${C}" d = "${D_1}${A}"').sort(), ["A", "C", "D_1"]);
  assert.equal(durationSeconds("500ms"), 0.5);
  assert.equal(durationSeconds("2m"), 120);
  assert.equal(durationSeconds("0"), 0);
  assert.throws(() => durationSeconds("1.5s"));
});

// Offline checks of the dashboard, the alert rules' metric names and the plain
// Prometheus scrape configuration:
//   - deploy/grafana/pgsidecar.json is valid JSON and a well-formed dashboard: schema
//     version, unique panel ids, panels inside the 24-column grid, every query on the
//     ${datasource} variable, P50/P95/P99 of client wait, query and transaction
//     duration per pool (histogram_quantile by (le, database, user) over the _bucket
//     rate), and panels for pool usage, server health and failover events;
//   - every pgsidecar_ metric the dashboard and deploy/prometheus/alerts.yml use is in
//     the metrics table of docs/operations.md, a histogram only through its _bucket,
//     _sum or _count series;
//   - deploy/kubernetes/prometheus-scrape.yaml discovers pods and keeps the sidecar's
//     metrics port.
// Writes to OUT_DIR, for run.sh to hand to promtool:
//   dashboard_rules.yml     every dashboard query as a recording rule (Grafana's
//                           variables replaced), so `promtool check rules` parses them;
//   prometheus-scrape.yml   the scrape configuration with static targets in place of
//                           kubernetes_sd_configs, which Debian's promtool is built without.
//
//   node check_observability.mjs REPO_DIR OUT_DIR     exits 1 on any problem
import fs from "node:fs";
import path from "node:path";
import { YAML } from "./deps.mjs";

const [repo, outDir] = process.argv.slice(2);
if (!repo || !outDir) {
  console.error("usage: node check_observability.mjs REPO_DIR OUT_DIR");
  process.exit(2);
}
const problems = [];
const fail = (message) => problems.push(message);
const ok = (message) => console.log(`ok   ${message}`);

// --- the metrics table of docs/operations.md ------------------------------------------------
const metrics = new Map();
const doc = fs.readFileSync(path.join(repo, "docs/operations.md"), "utf8");
const section = doc.split(/^## Metrics$/m)[1] ?? "";
for (const m of section.matchAll(/^\| `(pgsidecar_[a-z_]+)` \| (histogram|counter|gauge) \| ([^|]*)\|/gm)) {
  metrics.set(m[1], { type: m[2], labels: m[3].trim() });
}
if (metrics.size === 0) fail('docs/operations.md: no metrics table under "## Metrics"');
else ok(`docs/operations.md: ${metrics.size} metrics in the table`);

// Names of pgsidecar_ series in a PromQL expression, each checked against the table.
function checkNames(expr, where) {
  for (const [name] of expr.matchAll(/\bpgsidecar_[a-z_]+/g)) {
    if (metrics.has(name)) {
      if (metrics.get(name).type === "histogram") fail(`${where}: histogram ${name} used without _bucket, _sum or _count`);
      continue;
    }
    const base = name.replace(/_(bucket|sum|count)$/, "");
    if (base !== name && metrics.get(base)?.type === "histogram") continue;
    fail(`${where}: ${name} is not in the metrics table of docs/operations.md`);
  }
}

// --- dashboard ---------------------------------------------------------------------------------
const dashboardPath = path.join(repo, "deploy/grafana/pgsidecar.json");
let dashboard = null;
try {
  dashboard = JSON.parse(fs.readFileSync(dashboardPath, "utf8"));
  ok("deploy/grafana/pgsidecar.json: valid JSON");
} catch (e) {
  fail(`deploy/grafana/pgsidecar.json: ${e.message}`);
}

const queries = []; // [where, expr]
if (dashboard) {
  const d = dashboard;
  if (!(Number.isInteger(d.schemaVersion) && d.schemaVersion >= 36 && d.schemaVersion <= 41)) {
    fail(`dashboard: schemaVersion ${d.schemaVersion}, expected 36..41`);
  }
  if (!d.title || !d.uid) fail("dashboard: no title or uid");
  const variables = d.templating?.list ?? [];
  if (!variables.some((v) => v.name === "datasource" && v.type === "datasource" && v.query === "prometheus")) {
    fail("dashboard: no datasource variable of type prometheus");
  }
  const panels = [];
  for (const p of d.panels ?? []) {
    panels.push(p);
    for (const inner of p.panels ?? []) panels.push(inner);
  }
  const ids = new Set();
  for (const p of panels) {
    const where = `panel ${p.id} "${p.title}"`;
    if (ids.has(p.id)) fail(`${where}: duplicate id`);
    ids.add(p.id);
    const g = p.gridPos;
    if (!g || g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1 || g.y < 0) fail(`${where}: gridPos ${JSON.stringify(g)} outside the grid`);
    if (p.type === "row") continue;
    if (!p.targets?.length) fail(`${where}: no queries`);
    const refs = new Set();
    for (const t of p.targets ?? []) {
      if (refs.has(t.refId)) fail(`${where}: duplicate refId ${t.refId}`);
      refs.add(t.refId);
      if (t.datasource?.uid !== "${datasource}" && p.datasource?.uid !== "${datasource}") {
        fail(`${where}: query ${t.refId} not on the \${datasource} variable`);
      }
      if (typeof t.expr !== "string" || !t.expr.includes("pgsidecar_")) fail(`${where}: query ${t.refId} has no pgsidecar_ expression`);
      else queries.push([`${where} ${t.refId}`, t.expr]);
    }
  }
  for (const a of d.annotations?.list ?? []) if (a.expr) queries.push([`annotation "${a.name}"`, a.expr]);
  for (const v of variables) {
    const q = typeof v.query === "object" ? v.query.query : v.definition;
    const m = v.type === "query" && /^label_values\((.+),\s*[a-z_]+\)$/.exec(q ?? "");
    if (v.type === "query") {
      if (!m) fail(`variable ${v.name}: query ${q} is not label_values(SELECTOR, LABEL)`);
      else queries.push([`variable ${v.name}`, m[1]]);
    }
  }
  for (const [where, expr] of queries) checkNames(expr, where);

  // Required content.
  const compact = (s) => s.replace(/\s+/g, " ");
  const all = queries.map(([, e]) => compact(e));
  for (const histogram of ["pgsidecar_client_wait_seconds", "pgsidecar_query_duration_seconds", "pgsidecar_transaction_duration_seconds"]) {
    for (const q of ["0.5", "0.95", "0.99"]) {
      const wanted = `histogram_quantile(${q}, sum by (le, database, user) (rate(${histogram}_bucket{`;
      if (!all.some((e) => e.startsWith(wanted) && e.includes("[$__rate_interval]"))) {
        fail(`dashboard: no P${Number(q) * 100} of ${histogram} per pool (${wanted}...[$__rate_interval])))`);
      }
    }
  }
  const required = [
    ["pool usage: active servers", /pgsidecar_servers\{[^}]*state="active"/],
    ["pool usage: idle servers", /pgsidecar_servers\{[^}]*state="idle"/],
    ["pool usage: pool size", /pgsidecar_pool_size/],
    ["clients waiting", /pgsidecar_clients\{/],
    ["server health", /pgsidecar_server_up/],
    ["primary", /pgsidecar_server_primary/],
    ["switchovers", /pgsidecar_switchovers_total/],
    ["writes held", /pgsidecar_writes_held_total/],
    ["reads replayed", /pgsidecar_reads_replayed_total/],
  ];
  for (const [what, re] of required) if (!all.some((e) => re.test(e))) fail(`dashboard: no panel for ${what}`);
  ok(`dashboard: ${panels.length} panels, ${queries.length} queries checked`);

  // Each query as a recording rule, for promtool to parse.
  const substitute = (e) =>
    e
      .replaceAll("$__rate_interval", "5m")
      .replaceAll("$__interval", "1m")
      .replace(/\$\{?(namespace|database|user)\}?/g, ".*");
  const rules = queries.map(([where, expr], i) => ({
    record: `dashboard:query_${i}`,
    expr: substitute(expr),
    labels: { source: where.replace(/"/g, "'") },
  }));
  fs.writeFileSync(path.join(outDir, "dashboard_rules.yml"), YAML.stringify({ groups: [{ name: "dashboard", rules }] }));
}

// --- alert rules: metric names ---------------------------------------------------------------
const alerts = YAML.parse(fs.readFileSync(path.join(repo, "deploy/prometheus/alerts.yml"), "utf8"));
let alertCount = 0;
for (const group of alerts.groups ?? []) {
  for (const rule of group.rules ?? []) {
    alertCount++;
    checkNames(rule.expr, `alerts.yml ${rule.alert ?? rule.record}`);
  }
}
const wanted = ["PgsidecarPrimaryDown", "PgsidecarWritesHeld", "PgsidecarWritesFailing", "PgsidecarPoolSaturated",
  "PgsidecarClientWaitP99High", "PgsidecarReplicaLagHigh", "PgsidecarNotReady"];
const names = new Set((alerts.groups ?? []).flatMap((g) => (g.rules ?? []).map((r) => r.alert)));
for (const w of wanted) if (!names.has(w)) fail(`alerts.yml: no alert ${w}`);
ok(`alerts.yml: ${alertCount} rules use only metrics of the table`);

// --- plain scrape configuration ----------------------------------------------------------------
const scrapePath = path.join(repo, "deploy/kubernetes/prometheus-scrape.yaml");
const scrape = YAML.parse(fs.readFileSync(scrapePath, "utf8"));
const deployment = YAML.parse(fs.readFileSync(path.join(repo, "deploy/kubernetes/deployment.yaml"), "utf8"));
const sidecar = (deployment.spec.template.spec.initContainers ?? []).find((c) => c.restartPolicy === "Always");
const httpPortNames = (sidecar?.ports ?? []).filter((p) => p.containerPort === 9930).map((p) => p.name);
for (const job of scrape.scrape_configs ?? []) {
  const where = `prometheus-scrape.yaml job ${job.job_name}`;
  const sd = job.kubernetes_sd_configs ?? [];
  if (!sd.length || !sd.every((c) => c.role === "pod")) fail(`${where}: expected kubernetes_sd_configs with role pod`);
  const keepPort = (job.relabel_configs ?? []).find(
    (r) => r.action === "keep" && (r.source_labels ?? []).includes("__meta_kubernetes_pod_container_port_name"),
  );
  if (!keepPort || !httpPortNames.some((n) => new RegExp(`^(?:${keepPort.regex})$`).test(n))) {
    fail(`${where}: does not keep the sidecar's metrics port (${httpPortNames.join(", ") || "none named"} in deployment.yaml)`);
  }
  for (const label of ["namespace", "pod", "container"]) {
    if (!(job.relabel_configs ?? []).some((r) => r.target_label === label)) fail(`${where}: does not set the label ${label}`);
  }
  delete job.kubernetes_sd_configs;
  job.static_configs = [{ targets: ["127.0.0.1:9930"] }];
}
if (!scrape.scrape_configs?.length) fail("prometheus-scrape.yaml: no scrape_configs");
fs.writeFileSync(path.join(outDir, "prometheus-scrape.yml"), YAML.stringify(scrape));
ok("prometheus-scrape.yaml: pod discovery, keeps the sidecar's port, sets namespace, pod, container");

for (const p of problems) console.log(`FAIL ${p}`);
console.log(`observability: ${problems.length} problem(s)`);
process.exit(problems.length ? 1 : 0);

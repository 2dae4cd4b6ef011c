// The npm packages of the deploy checks live in tests/deploy/node/node_modules
// (package-lock.json there; scripts/install-deps.sh runs `npm ci`). Scripts here import
// them through this module, resolved from that directory.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(new URL("./node/package.json", import.meta.url));

async function load(specifier) {
  let resolved;
  try {
    resolved = require.resolve(specifier);
  } catch {
    throw new Error(
      `cannot find the npm package "${specifier}" in tests/deploy/node/node_modules: ` +
        "run scripts/install-deps.sh (or: cd tests/deploy/node && npm ci)",
    );
  }
  return import(pathToFileURL(resolved).href);
}

export const YAML = await load("yaml");
export const TOML = await load("smol-toml");
// kubernetes-models' CommonJS modules: their exports are on the default export.
async function model(specifier, name) {
  const module = await load(specifier);
  const cls = module[name] ?? module.default?.[name];
  if (typeof cls !== "function") throw new Error(`${specifier} has no class ${name}`);
  return cls;
}

export const Deployment = await model("kubernetes-models/apps/v1/Deployment", "Deployment");
export const ConfigMap = await model("kubernetes-models/v1/ConfigMap", "ConfigMap");
export const Secret = await model("kubernetes-models/v1/Secret", "Secret");
export const PodMonitor = await model(
  "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
  "PodMonitor",
);

#!/usr/bin/env node
// Theme Check on Lumi's theme app extension, without Shopify CLI: `node scripts/theme_check.mjs [root]`
// (default root: extensions/lumi-storefront). @shopify/theme-check-node has no bin, so this calls its
// themeCheckRun(); with a *.extension.toml in the root it picks Shopify's theme-app-extension config itself.
// Prints every offense as JSON on stdout; exits 1 on any error or warning (info does not fail), 2 if it
// cannot run.
//
// Offline and reproducible: theme-check would first download Shopify's Liquid docs data from GitHub into
// ~/.cache. Pointing its cache at a path that cannot exist makes that step fail at once, before any request,
// so it reads the docs data bundled with the version pinned in package-lock.json instead (its own fallback).
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const root = path.resolve(process.argv[2] || path.join(repo, 'extensions', 'lumi-storefront'));

process.env.XDG_CACHE_HOME = '/dev/null/lumi-theme-check'; // read when the module loads: set it first
const { themeCheckRun } = createRequire(import.meta.url)('@shopify/theme-check-node');

const SEVERITY = ['error', 'warning', 'info'];

try {
  const { offenses } = await themeCheckRun(root);
  const report = offenses.map((o) => ({
    check: o.check,
    severity: SEVERITY[o.severity] ?? String(o.severity),
    file: path.relative(root, fileURLToPath(o.uri)),
    line: o.start.line + 1,
    column: o.start.character + 1,
    message: o.message,
  }));
  const failing = report.filter((o) => o.severity === 'error' || o.severity === 'warning');
  process.stdout.write(JSON.stringify({ root, offenses: report, failing: failing.length }, null, 2) + '\n');
  process.exitCode = failing.length ? 1 : 0;
} catch (err) {
  process.stderr.write(`theme check could not run on ${root}: ${err.stack || err}\n`);
  process.exitCode = 2;
}

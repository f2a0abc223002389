#!/usr/bin/env node
// Bench for the static verify the conformance suite runs: for each example policy and each backend the
// evaluator reads (nftables, iptables), compile, read the ruleset back and answer verify's questions
// with the ruleset evaluator. Pure: no root, no namespace. Needs `npm run build`.
// Usage: node bench/conformance.mjs [runs=5]
import { readdirSync, readFileSync } from 'node:fs';
import { compilePolicy } from '../dist/compile/registry.js';
import { loadPolicyOrThrow } from '../dist/policy/load.js';
import { rulesetOfCompiled, staticQuestions, verifyStatically } from '../dist/verify/static.js';

const RUNS = Number(process.argv[2] ?? 5);
const examples = new URL('../examples/', import.meta.url);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
let total = 0;
console.log('| example | backend | questions | probes | disagreements | median ms |');
console.log('|---|---|---|---|---|---|');
for (const name of readdirSync(examples)
  .filter((f) => f.endsWith('.yaml'))
  .sort()) {
  const policy = loadPolicyOrThrow(readFileSync(new URL(name, examples), 'utf8'), `examples/${name}`);
  for (const backend of ['nftables', 'iptables']) {
    const times = [];
    let found = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      found = verifyStatically(policy, rulesetOfCompiled(backend, compilePolicy(policy, backend, 'bench')));
      times.push(performance.now() - t0);
    }
    const questions = staticQuestions(
      policy,
      rulesetOfCompiled(backend, compilePolicy(policy, backend, 'b')),
    );
    const probes = questions.reduce((n, q) => n + q.ports.reduce((m, r) => m + r.to - r.from + 1, 0), 0);
    total += median(times);
    console.log(
      `| ${name} | ${backend} | ${questions.length} | ${probes} | ${found.length} | ${median(times).toFixed(1)} |`,
    );
  }
}
console.log(`\nall ten: ${total.toFixed(0)} ms (sum of medians)`);

#!/usr/bin/env node
// Compiles deploy/contracts/src/*.sol with the pinned npm solc (solcjs) and
// writes one artifact per contract to deploy/contracts/artifacts/<Name>.json:
//   {"contractName", "abi", "bytecode" (0x creation code), "compiler"}
//
//   node deploy/contracts/build.js           write the artifacts
//   node deploy/contracts/build.js --check   compile in memory only; exit 1 and
//                                            name every artifact that differs
//                                            from the one on disk, 0 if none
//
// Exit codes: 0 ok, 1 --check found stale artifacts, 2 compile error or bad
// setup (solc's messages go to stderr).
//
// The output is byte-deterministic: fixed compiler, fixed settings, sources
// named by repo-relative paths (no absolute paths reach the metadata hash that
// solc appends to the bytecode), fixed key order, 2-space indent, trailing
// newline. That is what lets --check compare bytes.
//
// Imports of "@openzeppelin/..." are resolved from the node_modules folder
// under ZL_NPM_DIR (default ~/.cache/zeroloss/npm), where deploy/local/deps
// installs the pinned @openzeppelin/contracts and solc.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const here = __dirname;
const srcDir = path.join(here, 'src');
const outDir = path.join(here, 'artifacts');
const npmDir = process.env.ZL_NPM_DIR || path.join(os.homedir(), '.cache', 'zeroloss', 'npm');
const nodeModules = path.join(npmDir, 'node_modules');

// EVM target: "paris" (pre-Shanghai). solc 0.8.30 defaults to "prague", whose
// bytecode uses PUSH0 and newer opcodes. BSC has accepted PUSH0 since its
// Shanghai upgrade, but paris bytecode runs unchanged on BSC, anvil, and any
// chain or fork that lags behind; the only cost is one gas and one byte per
// zero pushed without PUSH0.
const EVM_VERSION = 'paris';

function fail(msg) {
  process.stderr.write(`build.js: ${msg}\n`);
  process.exit(2);
}

function loadSolc() {
  const p = path.join(nodeModules, 'solc');
  try {
    return require(p);
  } catch (e) {
    fail(`cannot load solc from ${p} (set ZL_NPM_DIR or run deploy/local/deps): ${e.message}`);
  }
}

// Import callback: only @openzeppelin/* is resolved, and only inside
// node_modules, so a build can never pick up a stray file elsewhere on disk.
function findImports(importPath) {
  if (!importPath.startsWith('@openzeppelin/')) {
    return { error: `unsupported import "${importPath}" (only @openzeppelin/... is resolved)` };
  }
  const full = path.resolve(nodeModules, importPath);
  if (!full.startsWith(nodeModules + path.sep)) {
    return { error: `import "${importPath}" escapes ${nodeModules}` };
  }
  try {
    return { contents: fs.readFileSync(full, 'utf8') };
  } catch (e) {
    return { error: `cannot read ${full}: ${e.message}` };
  }
}

function compile(solc) {
  const files = fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort();
  if (files.length === 0) fail(`no .sol files in ${srcDir}`);
  const sources = {};
  for (const f of files) {
    // Repo-relative-ish source unit names keep the metadata machine-independent.
    sources[`src/${f}`] = { content: fs.readFileSync(path.join(srcDir, f), 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: EVM_VERSION,
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) {
    if (e.severity !== 'error') process.stderr.write(e.formattedMessage || e.message);
  }
  if (errors.length > 0) {
    for (const e of errors) process.stderr.write(e.formattedMessage || e.message);
    fail(`compilation failed with ${errors.length} error(s)`);
  }

  // "0.8.30+commit.73712a01.Emscripten.clang" -> "solc-0.8.30+commit.73712a01"
  const compiler = 'solc-' + solc.version().replace(/\.Emscripten\.clang$/, '');
  const artifacts = new Map();
  // Only contracts defined in our own sources get artifacts, not OpenZeppelin's.
  for (const unit of Object.keys(sources)) {
    const contracts = (output.contracts || {})[unit] || {};
    for (const name of Object.keys(contracts).sort()) {
      const c = contracts[name];
      const artifact = {
        contractName: name,
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        compiler,
      };
      if (artifacts.has(name)) fail(`two contracts named ${name}`);
      artifacts.set(name, JSON.stringify(artifact, null, 2) + '\n');
    }
  }
  return artifacts;
}

function main() {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) fail(`unknown argument(s): ${unknown.join(' ')}\nusage: node build.js [--check]`);

  const artifacts = compile(loadSolc());

  if (check) {
    const stale = [];
    for (const [name, text] of artifacts) {
      const file = path.join(outDir, `${name}.json`);
      let onDisk = null;
      try {
        onDisk = fs.readFileSync(file, 'utf8');
      } catch (e) {
        /* missing counts as stale */
      }
      if (onDisk !== text) stale.push(`${path.relative(process.cwd(), file)} (${onDisk === null ? 'missing' : 'differs'})`);
    }
    // An artifact whose contract no longer exists is stale too.
    if (fs.existsSync(outDir)) {
      for (const f of fs.readdirSync(outDir).sort()) {
        if (f.endsWith('.json') && !artifacts.has(f.slice(0, -5))) {
          stale.push(`${path.relative(process.cwd(), path.join(outDir, f))} (no such contract in src/)`);
        }
      }
    }
    if (stale.length > 0) {
      for (const s of stale) process.stderr.write(`build.js: stale artifact: ${s}\n`);
      process.stderr.write('build.js: run `node deploy/contracts/build.js` to regenerate\n');
      process.exit(1);
    }
    process.stdout.write(`build.js: ${artifacts.size} artifact(s) up to date\n`);
    return;
  }

  fs.mkdirSync(outDir, { recursive: true });
  for (const [name, text] of artifacts) {
    const file = path.join(outDir, `${name}.json`);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
    process.stdout.write(`build.js: wrote ${path.relative(process.cwd(), file)}\n`);
  }
}

main();

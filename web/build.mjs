// Builds the portal into one directory: index.html, app.js, app.css.
//   node build.mjs <output dir> [--dev] [--node-modules DIR]
// --node-modules: where `npm ci` put esbuild and preact (default: web/node_modules;
// the CMake build installs them into its own tree, web/CMakeLists.txt).
// plcd serves that directory as `portal_root` under a strict CSP (script-src
// 'self', style-src 'self'), so the bundle has no inline scripts or styles and
// nothing is fetched from elsewhere at run time.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
let dev = false;
let outArg = null;
let nodeModules = join(here, 'node_modules');
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--dev') dev = true;
  else if (args[i] === '--node-modules' && i + 1 < args.length) nodeModules = resolve(args[++i]);
  else if (!args[i].startsWith('--') && !outArg) outArg = args[i];
  else {
    console.error(`build.mjs: unknown argument ${args[i]}`);
    outArg = null;
    break;
  }
}
if (!outArg) {
  console.error('usage: node build.mjs <output dir> [--dev] [--node-modules DIR]');
  process.exit(2);
}
const out = resolve(outArg);
// esbuild from that directory, and the app's own imports (preact) resolved there too.
const { build } = createRequire(join(nodeModules, 'resolve-from-here.js'))('esbuild');

await mkdir(out, { recursive: true });
// A --dev build's source map must not outlive it into a release build.
for (const name of ['app.js.map', 'app.css.map']) await rm(join(out, name), { force: true });

await build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.jsx' },
  bundle: true,
  outdir: out,
  format: 'iife',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  nodePaths: [nodeModules],
  minify: !dev,
  sourcemap: dev ? 'linked' : false,
  legalComments: 'none',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': dev ? '"development"' : '"production"' },
});
await build({
  absWorkingDir: here,
  entryPoints: { app: 'src/app.css' },
  bundle: true,
  outdir: out,
  minify: !dev,
  logLevel: 'warning',
});
await copyFile(join(here, 'src/index.html'), join(out, 'index.html'));
console.log(`portal built into ${out}`);

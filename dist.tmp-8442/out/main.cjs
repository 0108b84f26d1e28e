"use strict";

// src/cli/launcher.ts
var import_node_fs = require("node:fs");
var import_node_module = require("node:module");
var import_node_os = require("node:os");
var import_node_path = require("node:path");
var import_node_vm = require("node:vm");

// src/cli/checksum.ts
var MODULE = new Uint8Array([
  0,
  97,
  115,
  109,
  1,
  0,
  0,
  0,
  // magic, version
  1,
  6,
  1,
  96,
  1,
  127,
  1,
  127,
  // types: (i32) -> i32
  3,
  2,
  1,
  0,
  // functions: one of type 0
  5,
  3,
  1,
  0,
  8,
  // memory: 8 pages at first
  7,
  9,
  2,
  1,
  109,
  2,
  0,
  1,
  104,
  0,
  0,
  // exports: "m" memory 0, "h" function 0
  10,
  54,
  1,
  52,
  1,
  2,
  127,
  // code: one body, two i32 locals
  65,
  197,
  187,
  242,
  136,
  120,
  33,
  1,
  // h = 0x811c9dc5
  2,
  64,
  3,
  64,
  32,
  2,
  32,
  0,
  79,
  13,
  1,
  // block, loop, break out when i >= n
  32,
  1,
  32,
  2,
  40,
  2,
  0,
  115,
  65,
  147,
  131,
  128,
  8,
  108,
  33,
  1,
  // h = (h ^ load(i)) * 0x01000193
  32,
  2,
  65,
  4,
  106,
  33,
  2,
  12,
  0,
  11,
  11,
  // i += 4, loop again; ends
  32,
  1,
  11
  // return h
]);
var { Module, Instance } = globalThis.WebAssembly;
function checksum(data) {
  const wasm = new Instance(new Module(MODULE)).exports;
  const words = data.length + 3 & ~3;
  const pages = Math.ceil(words / 65536) - wasm.m.buffer.byteLength / 65536;
  if (pages > 0) wasm.m.grow(pages);
  new Uint8Array(wasm.m.buffer).set(data);
  return wasm.h(words) >>> 0;
}

// src/cli/command-line.ts
var GLOBAL_VALUE_OPTIONS = /* @__PURE__ */ new Set(["--root", "--runroot", "--storage-driver", "--log-level", "--runtime"]);
var GROUPS = /* @__PURE__ */ new Set(["container", "generate", "image", "skopeo", "system"]);
var GROUP_VALUE_OPTIONS = {
  skopeo: /* @__PURE__ */ new Set(["--policy", "--override-arch", "--override-os", "--override-variant", "--tmpdir", "--command-timeout", "--registries.d"])
};
function commandWords(args) {
  return commandLine(args).words;
}
function commandLine(args) {
  const words = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (GLOBAL_VALUE_OPTIONS.has(a) || words.length === 1 && GROUP_VALUE_OPTIONS[words[0]]?.has(a)) i++;
    else if (!a.startsWith("-")) {
      words.push(a);
      if (words.length === 2 || !GROUPS.has(a)) return { words, end: i + 1 };
    }
  }
  return { words, end: args.length };
}

// src/cli/launcher.ts
var BUNDLE = (0, import_node_path.join)(__dirname, "barge.cjs");
var LEARNING_RUNS = 3;
var MAGIC = 1112688451;
var HEADER = 16;
function trustedDir(dir2, create) {
  try {
    if (create) (0, import_node_fs.mkdirSync)(dir2, { recursive: true, mode: 448 });
    const st2 = (0, import_node_fs.statSync)(dir2);
    return st2.isDirectory() && st2.uid === process.getuid?.() && (st2.mode & 18) === 0;
  } catch {
    return false;
  }
}
function readCache(file2) {
  let buf;
  try {
    buf = (0, import_node_fs.readFileSync)(file2);
  } catch {
    return void 0;
  }
  if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC || buf.readUInt32LE(8) !== buf.length - HEADER) return void 0;
  const data = buf.subarray(HEADER);
  return checksum(data) === buf.readUInt32LE(12) ? { runs: buf.readUInt32LE(4), data } : void 0;
}
function writeCache(dir2, file2, runs2, data, build2) {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(runs2, 4);
  header.writeUInt32LE(data.length, 8);
  header.writeUInt32LE(checksum(data), 12);
  const tmp = `${file2}.${process.pid}.tmp`;
  const fd = (0, import_node_fs.openSync)(tmp, "w", 384);
  try {
    (0, import_node_fs.writeSync)(fd, header);
    (0, import_node_fs.writeSync)(fd, data);
  } finally {
    (0, import_node_fs.closeSync)(fd);
  }
  (0, import_node_fs.renameSync)(tmp, file2);
  for (const f of (0, import_node_fs.readdirSync)(dir2)) if (!f.startsWith(`${build2}.`)) (0, import_node_fs.rmSync)((0, import_node_path.join)(dir2, f), { force: true });
}
var cacheRoot = (0, import_node_path.join)(process.env.XDG_CACHE_HOME || (0, import_node_path.join)((0, import_node_os.homedir)(), ".cache"), "barge");
(0, import_node_module.enableCompileCache)?.((0, import_node_path.join)(cacheRoot, "node-compile-cache"));
var bundleFd = (0, import_node_fs.openSync)(BUNDLE, "r");
var st = (0, import_node_fs.fstatSync)(bundleFd);
var build = `${st.ino}-${st.size}-${Math.trunc(st.mtimeMs)}`;
var source = (0, import_node_fs.readFileSync)(bundleFd, "latin1");
(0, import_node_fs.closeSync)(bundleFd);
var key = commandWords(process.argv.slice(2)).filter((w) => /^[a-z][a-z-]{0,23}$/.test(w)).join("-") || "none";
var dir = (0, import_node_path.join)(cacheRoot, "code");
var file = (0, import_node_path.join)(dir, `${build}.${key}.bin`);
var cached = trustedDir(dir, false) ? readCache(file) : void 0;
var script = new import_node_vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}
})`, {
  filename: BUNDLE,
  ...cached && { cachedData: cached.data },
  importModuleDynamically: import_node_vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
});
var runs = cached && !script.cachedDataRejected ? cached.runs : 0;
var ran = false;
if (runs < LEARNING_RUNS) {
  process.on("exit", () => {
    if (!ran || !trustedDir(dir, true)) return;
    try {
      writeCache(dir, file, runs + 1, script.createCachedData(), build);
    } catch {
    }
  });
}
var bundle = { exports: {} };
script.runInThisContext()(
  bundle.exports,
  (0, import_node_module.createRequire)(BUNDLE),
  bundle,
  BUNDLE,
  (0, import_node_path.dirname)(BUNDLE)
);
void bundle.exports.start().then(() => {
  ran = true;
});
//# sourceMappingURL=main.cjs.map

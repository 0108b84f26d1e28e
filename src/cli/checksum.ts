// FNV-1a over 32-bit little-endian words, for the launcher to check a code cache (about 0.4 MB)
// on every run. Written in JavaScript the loop runs in V8's interpreter, as a process that lives
// for 50 ms never gets it optimised: 2-5 ms. node:crypto's hashes are native but loading crypto
// takes 5 ms. This WebAssembly function is compiled in microseconds and runs the loop natively:
// under 1 ms, copying the data in included.
//
// (module
//   (memory (export "m") 8)
//   (func (export "h") (param $n i32) (result i32) (local $h i32) (local $i i32)
//     (local.set $h (i32.const 0x811c9dc5))
//     (block (loop
//       (br_if 1 (i32.ge_u (local.get $i) (local.get $n)))
//       (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load (local.get $i))) (i32.const 0x01000193)))
//       (local.set $i (i32.add (local.get $i) (i32.const 4)))
//       (br 0)))
//     (local.get $h)))
const MODULE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, // magic, version
  1, 6, 1, 96, 1, 127, 1, 127, // types: (i32) -> i32
  3, 2, 1, 0, // functions: one of type 0
  5, 3, 1, 0, 8, // memory: 8 pages at first
  7, 9, 2, 1, 109, 2, 0, 1, 104, 0, 0, // exports: "m" memory 0, "h" function 0
  10, 54, 1, 52, 1, 2, 127, // code: one body, two i32 locals
  65, 197, 187, 242, 136, 120, 33, 1, // h = 0x811c9dc5
  2, 64, 3, 64, 32, 2, 32, 0, 79, 13, 1, // block, loop, break out when i >= n
  32, 1, 32, 2, 40, 2, 0, 115, 65, 147, 131, 128, 8, 108, 33, 1, // h = (h ^ load(i)) * 0x01000193
  32, 2, 65, 4, 106, 33, 2, 12, 0, 11, 11, // i += 4, loop again; ends
  32, 1, 11, // return h
]);

// tsconfig's libraries (ES2023 and Node's types) do not declare WebAssembly; these are the parts used here.
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
interface Exports {
  m: { buffer: ArrayBuffer; grow(pages: number): number };
  h(n: number): number;
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** FNV-1a of `data` taken as 32-bit little-endian words, zero-padded to a whole word. */
export function checksum(data: Uint8Array): number {
  const wasm = new Instance(new Module(MODULE)).exports as Exports;
  const words = (data.length + 3) & ~3;
  const pages = Math.ceil(words / 65536) - wasm.m.buffer.byteLength / 65536;
  if (pages > 0) wasm.m.grow(pages);
  new Uint8Array(wasm.m.buffer).set(data);
  return wasm.h(words) >>> 0;
}

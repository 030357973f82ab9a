#!/usr/bin/env node
// A Node.js client that relies on half-close: it sends a request, calls
// end() (FIN: "I will send no more"), and keeps reading until the server's
// own FIN ('end'). allowHalfOpen: true stops Node from ending our side
// automatically when the server's FIN arrives.
//
// usage: node node_halfopen.js HOST PORT BYTES
//
// Sends BYTES (rounded up to a multiple of 16) of 'capitalize this!' and
// prints 'received N bytes fnv1a32 XXXXXXXX' (FNV-1a, 32 bits, of the whole
// reply). Exit 0 after 'end' and 'close'; 1 on a socket error (its code on
// stderr, e.g. ECONNRESET).
'use strict';

const net = require('net');

const [host, portArg, bytesArg] = process.argv.slice(2);
if (!host || !/^\d+$/.test(portArg || '') || !/^\d+$/.test(bytesArg || '')) {
  process.stderr.write('usage: node node_halfopen.js HOST PORT BYTES\n');
  process.exit(2);
}
const total = Math.ceil(Number(bytesArg) / 16) * 16;
const request = Buffer.from('capitalize this!'.repeat(total / 16));

let hash = 0x811c9dc5;
let received = 0;
let ended = false;

const sock = net.connect({ host, port: Number(portArg), allowHalfOpen: true });
sock.on('connect', () => {
  // write() queues what the kernel does not take; end() sends FIN after it.
  sock.write(request);
  sock.end();
});
sock.on('data', (chunk) => {
  for (let i = 0; i < chunk.length; i++) {
    hash = Math.imul(hash ^ chunk[i], 0x01000193) >>> 0;
  }
  received += chunk.length;
});
sock.on('end', () => {
  ended = true;
});
sock.on('error', (err) => {
  process.stderr.write(`error: ${err.code || err.message} after ${received} bytes\n`);
  process.exitCode = 1;
});
sock.on('close', () => {
  if (!ended) {
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`received ${received} bytes fnv1a32 ${hash.toString(16).padStart(8, '0')}\n`);
});

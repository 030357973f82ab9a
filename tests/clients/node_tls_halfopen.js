// A Node.js TLS client that half-closes: connect with allowHalfOpen, send
// the request, end() (close_notify, then FIN), and read the reply to its
// end. Prints the reply's length and whether it ended cleanly.
//
//   node node_tls_halfopen.js PORT CA_PEM REQUEST_BYTES
'use strict';
const tls = require('tls');
const fs = require('fs');

const [port, caFile, size] = process.argv.slice(2);
const request = Buffer.alloc(Number(size), 'abcdefghij');
const socket = tls.connect({
  host: '127.0.0.1',
  port: Number(port),
  ca: fs.readFileSync(caFile),
  servername: 'localhost',
  allowHalfOpen: true,
});
let got = 0;
let ok = true;
const expect = request.toString().toUpperCase();
socket.on('secureConnect', () => {
  socket.end(request);
});
socket.on('data', (d) => {
  if (d.toString() !== expect.slice(got, got + d.length)) ok = false;
  got += d.length;
});
socket.on('end', () => {
  console.log(`${got} ${ok && got === request.length ? 'whole' : 'corrupt'} end`);
});
socket.on('error', (e) => {
  console.log(`${got} error ${e.code}`);
  process.exitCode = 1;
});

// The half-close echo server as Node.js users write it: `net` with
// `allowHalfOpen: true`, so the client's FIN ('end') leaves our side open
// for the reply.
//
//   node benches/peers/node/peer.js --listen 127.0.0.1:0 [--hold-ms H] [--echo]
//   node benches/peers/node/peer.js --listen 127.0.0.1:0 --tls-cert PEM --tls-key PEM
//
// Prints `listening on IP:PORT` first. Each socket collects its request
// chunks; on 'end' (after the hold) it answers with `socket.end(request)`,
// which writes, sends a FIN and lets Node close the socket. A held socket
// that the client resets ('close' before the timer) drops its timer. In
// echo mode the socket is piped into itself. SIGTERM closes the process.
//
// With --tls-cert and --tls-key the half-close echo runs over TLS, as
// Node users write it: `tls.createServer` with `allowHalfOpen: true`, the
// same handler. The client's close_notify ends the readable side ('end');
// `socket.end(request)` writes the reply, then sends our close_notify and
// the FIN. Node's defaults otherwise (OpenSSL, stateless session tickets).
//
// Node 20 has no SO_REUSEPORT (`reusePort` came in Node 22.12); several
// processes on one port need the `cluster` module, which this peer does
// not use: `--reuseport` is refused.
'use strict';

const fs = require('fs');
const net = require('net');
const tls = require('tls');

const BACKLOG = 4096;

function parseArgs(argv) {
  const a = { host: '127.0.0.1', port: 0, holdMs: 0, echo: false, tlsCert: null, tlsKey: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--listen') {
      const v = value();
      const colon = v.lastIndexOf(':');
      a.host = v.slice(0, colon).replace(/^\[|\]$/g, '');
      a.port = Number(v.slice(colon + 1));
    } else if (arg === '--hold-ms') {
      a.holdMs = Number(value());
    } else if (arg === '--echo') {
      a.echo = true;
    } else if (arg === '--tls-cert') {
      a.tlsCert = value();
    } else if (arg === '--tls-key') {
      a.tlsKey = value();
    } else if (arg === '--reuseport') {
      usage('--reuseport: Node 20 has no SO_REUSEPORT (use the cluster module)');
    } else {
      usage(`unknown argument: ${arg}`);
    }
  }
  if ((a.tlsCert === null) !== (a.tlsKey === null)) usage('--tls-cert and --tls-key go together');
  if (a.tlsCert !== null && a.echo) usage('--tls-cert: the half-close echo only, not --echo');
  return a;
}

function usage(msg) {
  process.stderr.write(`peer.js: ${msg}\nusage: node peer.js [--listen ADDR] [--hold-ms H] [--echo | --tls-cert PEM --tls-key PEM]\n`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));

function halfCloseEcho(socket) {
  const chunks = [];
  let timer = null;
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.on('end', () => {
    const reply = () => {
      timer = null;
      socket.end(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    };
    if (args.holdMs > 0) {
      timer = setTimeout(reply, args.holdMs);
    } else {
      reply();
    }
  });
  socket.on('close', () => {
    if (timer !== null) clearTimeout(timer);
  });
  socket.on('error', () => {}); // a reset: 'close' follows
}

function echo(socket) {
  socket.on('error', () => {});
  socket.pipe(socket); // ends our side after the client's FIN
}

const server = args.tlsCert !== null
  ? tls.createServer({
    cert: fs.readFileSync(args.tlsCert),
    key: fs.readFileSync(args.tlsKey),
    allowHalfOpen: true,
  }, halfCloseEcho)
  : net.createServer({ allowHalfOpen: true }, args.echo ? echo : halfCloseEcho);
server.on('error', (err) => {
  // EMFILE and the like: Node retries accepting by itself.
  process.stderr.write(`peer.js: ${err.message}\n`);
});
server.listen({ host: args.host, port: args.port, backlog: BACKLOG }, () => {
  const { address, port } = server.address();
  process.stdout.write(`listening on ${address}:${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));

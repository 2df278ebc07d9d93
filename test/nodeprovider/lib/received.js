'use strict';

// What the provider received, for tests to read over HTTP on loopback:
//
//   GET    /received[?since=SEQ]  {"total", "heartbeats", "calls": [...]}
//   DELETE /received             forgets the calls
//   GET    /healthz              ok
//
// Each call: seq, service, version, group, wireMethod ($invoke or the
// method), method, argTypes, args (each value with its hessian class at
// every level, as decoded), values (the arguments as the method got them,
// plainly), attachments, dubboVersion, outcome (pending, value, null,
// exception, bad_request, not_found, service_error, status), status,
// result or exception, durationMs.

const http = require('http');
const { URL } = require('url');

class Recorder {
  constructor(limit) {
    this.limit = limit;
    this.calls = [];
    this.total = 0;
    this.heartbeats = 0;
  }

  // begin records a call as it arrives; the caller fills in the rest.
  begin(fields) {
    this.total++;
    const call = Object.assign({ seq: this.total, at: new Date().toISOString(), outcome: 'pending' }, fields);
    this.calls.push(call);
    if (this.calls.length > this.limit) {
      this.calls.shift();
    }
    return call;
  }

  heartbeat() {
    this.heartbeats++;
  }

  view(since) {
    return {
      total: this.total,
      heartbeats: this.heartbeats,
      calls: this.calls.filter((c) => c.seq > since),
    };
  }

  clear() {
    const n = this.calls.length;
    this.calls = [];
    return n;
  }
}

// serveReceived answers the HTTP endpoint on 127.0.0.1:port; resolves to
// the server once it listens.
function serveReceived(recorder, port) {
  const server = http.createServer((req, res) => route(recorder, req, res));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

function route(recorder, req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/healthz') {
    return reply(res, 200, { ok: true });
  }
  if (url.pathname !== '/received') {
    return reply(res, 404, { error: `no such path ${url.pathname}` });
  }
  if (req.method === 'DELETE') {
    return reply(res, 200, { cleared: recorder.clear() });
  }
  if (req.method !== 'GET') {
    return reply(res, 405, { error: `${req.method} is not served` });
  }
  const since = Number(url.searchParams.get('since') || 0);
  return reply(res, 200, recorder.view(Number.isFinite(since) ? since : 0));
}

function reply(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

module.exports = { Recorder, serveReceived };

#!/usr/bin/env node
'use strict';

// An independent Dubbo provider for protogate's tests: the dubbo protocol
// and hessian2 in Node.js (dubbo-remoting, hessian.js), sharing nothing with
// dubbo-go. It serves com.example.TypeService (version 1.0.0, and the same
// methods as com.example.UserService without a version, the Go example
// provider's service) on 127.0.0.1, and reports what it received over HTTP.
//
//   node provider.js --port 0 --received-port 0
//   node provider ready port=PORT received=PORT      (on stdout, once serving)
//
// SIGTERM or SIGINT stops it as a Java provider stops: a READONLY event to
// every consumer, calls in flight finish, then the connections close.

const { parseArgs } = require('util');
const { DubboServer, STATUS } = require('./lib/server');
const { Recorder, serveReceived } = require('./lib/received');
const { newService } = require('./lib/service');

const OPTIONS = {
  port: { type: 'string', default: '0' },
  'received-port': { type: 'string', default: '0' },
  group: { type: 'string', default: '' },
  results: { type: 'string', default: 'generalized' },
  'not-found-status': { type: 'string', default: String(STATUS.SERVICE_NOT_FOUND) },
  payload: { type: 'string', default: String(8 * 1024 * 1024) },
  record: { type: 'string', default: '1000' },
  'shutdown-wait': { type: 'string', default: '10000' },
  'log-level': { type: 'string', default: 'info' },
  'parent-pipe': { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
};

const USAGE = `usage: node provider.js [--port N] [--received-port N] [--group G]
  [--results generalized|typed] [--not-found-status 60|70] [--payload BYTES]
  [--record N] [--shutdown-wait MS] [--log-level debug|info|warn|error] [--parent-pipe]

  --results generalized   generic results as Dubbo's GenericFilter gives them: POJOs as maps
                          with a "class" key, enums as their names (what a Java provider does)
  --results typed         POJOs and enums as typed hessian objects
  --not-found-status 70   answer an unknown service as Java does (SERVICE_ERROR, with
                          "Not found exported service"); the default is 60 SERVICE_NOT_FOUND
  --parent-pipe           exit when stdin closes (the test that started it is gone)`;

function main() {
  let opts;
  try {
    opts = readOptions();
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  start(opts).catch((err) => {
    log('error', 'the node provider could not start', { err: err.message });
    process.exit(1);
  });
}

function readOptions() {
  const { values } = parseArgs({ options: OPTIONS, strict: true });
  const number = (name, min, max) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error(`--${name} ${values[name]}: want an integer from ${min} to ${max}`);
    }
    return n;
  };
  if (![ 'generalized', 'typed' ].includes(values.results)) {
    throw new Error(`--results ${values.results}: want generalized or typed`);
  }
  if (!Object.prototype.hasOwnProperty.call(LEVELS, values['log-level'])) {
    throw new Error(`--log-level ${values['log-level']}: want debug, info, warn or error`);
  }
  const notFound = number('not-found-status', 1, 255);
  if (notFound !== STATUS.SERVICE_NOT_FOUND && notFound !== STATUS.SERVICE_ERROR) {
    throw new Error(`--not-found-status ${notFound}: want 60 or 70`);
  }
  return {
    help: values.help,
    port: number('port', 0, 65535),
    receivedPort: number('received-port', 0, 65535),
    group: values.group,
    generalized: values.results === 'generalized',
    notFoundStatus: notFound,
    payload: number('payload', 1024, 2 ** 31 - 1),
    record: number('record', 1, 1e6),
    shutdownWait: number('shutdown-wait', 0, 600000),
    logLevel: values['log-level'],
    parentPipe: values['parent-pipe'],
  };
}

async function start(opts) {
  logLevel = LEVELS[opts.logLevel];
  const recorder = new Recorder(opts.record);
  const service = newService();
  const server = new DubboServer({
    exports: [
      { iface: 'com.example.TypeService', version: '1.0.0', group: opts.group, service },
      { iface: 'com.example.UserService', version: '', group: opts.group, service },
    ],
    recorder,
    log: logger,
    generalized: opts.generalized,
    notFoundStatus: opts.notFoundStatus,
    payload: opts.payload,
  });
  const port = await server.listen(opts.port);
  const http = await serveReceived(recorder, opts.receivedPort);
  stopOn(server, http, opts);
  // Tests wait for this line.
  process.stdout.write(`node provider ready port=${port} received=${http.address().port}\n`);
}

function stopOn(server, http, opts) {
  let stopping = false;
  const stop = async (why) => {
    if (stopping) {
      return;
    }
    stopping = true;
    log('info', 'node provider stopping', { reason: why });
    await server.close(opts.shutdownWait);
    http.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (opts.parentPipe) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.on('error', () => process.exit(0));
    process.stdin.resume();
  }
}

// Logs: slog-like text lines on stderr.
const LEVELS = { debug: 0, info: 1, warn: 2, error: 3 };
let logLevel = LEVELS.info;

function log(level, msg, fields = {}) {
  if (LEVELS[level] < logLevel) {
    return;
  }
  const kv = Object.entries(fields).map(([ k, v ]) => `${k}=${JSON.stringify(String(v))}`);
  process.stderr.write(`time=${new Date().toISOString()} level=${level.toUpperCase()} msg=${JSON.stringify(msg)} ${kv.join(' ')}\n`);
}

const logger = {
  debug: (msg, f) => log('debug', msg, f),
  info: (msg, f) => log('info', msg, f),
  warn: (msg, f) => log('warn', msg, f),
  error: (msg, f) => log('error', msg, f),
};

main();

'use strict';

// A Dubbo-protocol provider: it answers requests, heartbeats and generic
// $invoke calls the way a Java provider with Dubbo's GenericFilter does.
//
// Status answers, as Java's HeaderExchangeHandler gives them: a body that
// cannot be decoded (including a known class whose field arrives in the
// wrong hessian form) is 40 BAD_REQUEST; an unknown service is 60
// SERVICE_NOT_FOUND (Java itself answers 70 with "Not found exported
// service"; --not-found-status 70 does that); a failure around the method
// (no such method, an argument the generic filter cannot convert) is 70
// SERVICE_ERROR; a result over the payload limit is 50 BAD_RESPONSE.
// Everything else is 20 OK with a value, a null or an exception.

const net = require('net');
const { FrameReader, HESSIAN2, responseFrame, eventRequestFrame } = require('./frame');
const codec = require('./codec');
const java = require('./java');
const { parseType } = require('./types');

const STATUS = { OK: 20, BAD_REQUEST: 40, BAD_RESPONSE: 50, SERVICE_NOT_FOUND: 60, SERVICE_ERROR: 70 };
const PROTOCOL_VERSION = '2.0.2';
const GENERIC_EXCEPTION = 'com.alibaba.dubbo.rpc.service.GenericException';

// StatusAnswer: a method asked for a status other than OK.
class StatusAnswer {
  constructor(status, message) {
    this.status = status;
    this.message = message;
  }
}

class DubboServer {
  // exports: [{iface, version, group, service}]; generalized: results of
  // generic calls as GenericFilter generalizes them (else typed).
  constructor({ exports, recorder, log, generalized, notFoundStatus, payload }) {
    this.exports = new Map(exports.map((e) => [ serviceKey(e.group, e.iface, e.version), e ]));
    this.recorder = recorder;
    this.log = log;
    this.generalized = generalized;
    this.notFoundStatus = notFoundStatus;
    this.payload = payload;
    this.conns = new Set();
    this.inFlight = 0;
    this.eventId = 0;
  }

  listen(port) {
    this.server = net.createServer((socket) => this.accept(socket));
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this.port);
      });
    });
  }

  accept(socket) {
    const conn = {
      socket,
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
      local: `${socket.localAddress}:${socket.localPort}`,
      abandon: new Set(),
    };
    this.conns.add(conn);
    socket.setNoDelay(true);
    const reader = new FrameReader({
      maxBody: this.payload,
      onFrame: (head, body) => this.frame(conn, head, body),
      onOversize: (head) => this.oversize(conn, head),
      onGarbage: () => {
        this.log.warn('not the dubbo protocol: closing the connection', { remote: conn.remote });
        socket.destroy();
      },
    });
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('error', (err) => this.log.debug('connection error', { remote: conn.remote, err: err.message }));
    socket.on('close', () => {
      this.conns.delete(conn);
      for (const f of conn.abandon) f();
    });
    this.log.debug('connection accepted', { remote: conn.remote });
  }

  frame(conn, head, body) {
    if (!head.isRequest) {
      return; // a response to an event of ours: nothing waits for it
    }
    if (head.event) {
      this.event(conn, head, body);
      return;
    }
    if (head.serialization !== HESSIAN2) {
      this.send(conn, head, STATUS.BAD_REQUEST, codec.encodeString(
        `Fail to decode request due to: serialization id ${head.serialization} is not hessian2 (2)`));
      return;
    }
    this.inFlight++;
    this.request(conn, head, body)
      .catch((err) => this.log.error('request failed', { remote: conn.remote, err: err.stack }))
      .finally(() => { this.inFlight--; });
  }

  // event answers a heartbeat; other events (a consumer's READONLY) need no
  // answer.
  event(conn, head, body) {
    let data;
    try {
      data = codec.decodeEvent(body);
    } catch (err) {
      data = undefined;
    }
    if ((data === null || data === undefined) && head.twoWay) {
      this.recorder.heartbeat();
      this.send(conn, head, STATUS.OK, codec.encodeNull(), true);
    }
  }

  oversize(conn, head) {
    const msg = `Data length too large: ${head.bodyLength}, max payload: ${this.payload}`;
    this.log.warn('request over the payload limit', { remote: conn.remote, length: head.bodyLength });
    if (head.twoWay && !head.event) {
      this.send(conn, head, STATUS.BAD_REQUEST, codec.encodeString(`Fail to decode request due to: ${msg}`));
    }
  }

  async request(conn, head, body) {
    const started = Date.now();
    let req;
    try {
      req = codec.decodeRequest(body);
    } catch (err) {
      // Recorded too: a test asserting that nothing reached the provider
      // must see a request that arrived undecodable.
      const call = this.recorder.begin({ wireMethod: null, generic: false, args: [], attachments: {} });
      const answer = { status: STATUS.BAD_REQUEST, outcome: 'bad_request', message: `Fail to decode request due to: ${err.message}` };
      if (head.twoWay) {
        this.answer(conn, head, null, answer, call);
      } else {
        recordAnswer(call, answer);
      }
      return;
    }
    const attachments = plainAttachments(req.attachments);
    const call = this.recorder.begin(callRecord(req, attachments));
    const answer = await this.invoke(conn, req, attachments, call);
    call.durationMs = Date.now() - started;
    if (head.twoWay) {
      this.answer(conn, head, req, answer, call);
    } else {
      recordAnswer(call, answer);
    }
  }

  // invoke finds the service and the method, converts the arguments and
  // runs it; it resolves to what to answer.
  async invoke(conn, req, attachments, call) {
    const iface = attachments.path || req.path;
    const version = attachments.version !== undefined ? attachments.version : req.version;
    const group = attachments.group || '';
    const exported = this.exports.get(serviceKey(group, iface, version));
    if (!exported) {
      const message = this.notFound(conn, req.method, attachments, serviceKey(group, iface, version));
      return { status: this.notFoundStatus, outcome: 'not_found', message };
    }
    let inv = null;
    try {
      inv = invocation(req, exported.service.classpath);
      const m = findMethod(exported, inv);
      const args = realizeArgs(m, inv, exported.service.classpath);
      call.values = args.map(java.toJSON);
      exported.service.remember(m.name, args);
      const value = await run(m, args, conn, attachments);
      return result(value, this.generalized && inv.generic);
    } catch (err) {
      if (!isAnswer(err)) {
        // A fault of this provider: answered as Java answers an exception
        // thrown around the method, and logged.
        this.log.error('call failed inside the provider', { method: req.method, err: err.stack });
      }
      return failure(err, Boolean(inv && inv.generic));
    }
  }

  // notFound words the answer as Java's DubboProtocol.getInvoker does,
  // socket addresses included.
  notFound(conn, method, attachments, key) {
    const known = [ ...this.exports.keys() ].map((k) => `${k}:${this.port}`).join(', ');
    const att = Object.entries(attachments).map(([ k, v ]) => `${k}=${v}`).join(', ');
    return `Not found exported service: ${key}:${this.port} in [${known}], may be version or group mismatch , ` +
      `channel: consumer: /${conn.remote} --> provider: /${conn.local}, message:RpcInvocation ` +
      `[methodName=${method}, attachments={${att}}]`;
  }

  // answer writes the response and completes the call's record.
  answer(conn, head, req, answer, call) {
    if (call) {
      recordAnswer(call, answer);
    }
    if (answer.status !== STATUS.OK) {
      this.send(conn, head, answer.status, codec.encodeString(answer.message));
      return;
    }
    const attachments = req && supportsResponseAttachments(req.dubboVersion) ?
      { dubbo: PROTOCOL_VERSION, ...traceContext(req) } : null;
    let body;
    try {
      body = codec.encodeResult(answer.kind, answer.value, attachments);
    } catch (err) {
      this.badResponse(conn, head, call, `Failed to send response: ${err.message}`);
      return;
    }
    if (body.length > this.payload) {
      this.badResponse(conn, head, call,
        `Data length too large: ${body.length}, max payload: ${this.payload}, channel: /${conn.local} --> /${conn.remote}`);
      return;
    }
    this.send(conn, head, STATUS.OK, body);
  }

  // badResponse answers 50, as Java does when it cannot encode a result.
  badResponse(conn, head, call, message) {
    if (call) {
      Object.assign(call, { outcome: 'bad_response', status: STATUS.BAD_RESPONSE, message });
    }
    this.send(conn, head, STATUS.BAD_RESPONSE, codec.encodeString(message));
  }

  send(conn, head, status, body, event) {
    if (!conn.socket.destroyed) {
      conn.socket.write(responseFrame(head.id, status, body, event));
    }
  }

  // close stops as a Java provider does: no new connections, a READONLY
  // event to every consumer so it stops sending here, then the calls in
  // flight finish (at most waitMs) before the connections close.
  async close(waitMs) {
    this.server.close();
    for (const conn of this.conns) {
      if (!conn.socket.destroyed) {
        conn.socket.write(eventRequestFrame(++this.eventId, codec.encodeString('R')));
      }
    }
    const deadline = Date.now() + waitMs;
    while (this.inFlight > 0 && Date.now() < deadline) {
      await pause(20);
    }
    // Every answer written, then a FIN (not a reset): the consumer reads
    // all of them before it sees the end.
    const flushed = [ ...this.conns ].map((conn) => new Promise((resolve) => {
      conn.socket.once('finish', resolve);
      conn.socket.once('close', resolve);
      conn.socket.end();
    }));
    await Promise.race([ Promise.all(flushed), pause(1000) ]);
    for (const conn of this.conns) {
      conn.socket.destroy();
    }
  }
}

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function serviceKey(group, iface, version) {
  return `${group ? `${group}/` : ''}${iface}${version ? `:${version}` : ''}`;
}

// plainAttachments turns the attachment map into {name: value}.
// traceContext is the W3C trace context a call came with, answered back
// in the response attachments as a provider that continues the trace does.
function traceContext(req) {
  const a = plainAttachments(req.attachments);
  const out = {};
  for (const k of [ 'traceparent', 'tracestate' ]) {
    if (typeof a[k] === 'string') {
      out[k] = a[k];
    }
  }
  return out;
}

function plainAttachments(node) {
  const out = {};
  if (!node || !node.isMap) {
    return out;
  }
  for (const [ k, v ] of node.$) {
    const key = k && k.$class === 'java.lang.String' ? k.$ : JSON.stringify(java.wireJSON(k));
    out[key] = v && 'boolean int long double java.lang.String'.split(' ').includes(v.$class) ? v.$ : java.wireJSON(v);
  }
  return out;
}

// callRecord is what /received shows of a request, read from the wire
// before anything is converted.
function callRecord(req, attachments) {
  const record = {
    service: attachments.path || req.path,
    version: attachments.version !== undefined ? attachments.version : req.version,
    group: attachments.group || '',
    wireMethod: req.method,
    generic: false,
    method: req.method,
    argTypes: req.paramTypes,
    args: req.args.map((a) => java.wireJSON(a)),
    attachments,
    dubboVersion: req.dubboVersion,
  };
  const [ name, types, args ] = req.args;
  if (isGenericCall(req)) {
    Object.assign(record, {
      generic: true,
      method: name && name.$,
      argTypes: types && Array.isArray(types.$) ? types.$.map((t) => t && t.$) : null,
      args: args && Array.isArray(args.$) ? args.$.map((a) => java.wireJSON(a)) : [],
    });
  }
  return record;
}

function isGenericCall(req) {
  return (req.method === '$invoke' || req.method === '$invokeAsync') && req.args.length === 3;
}

// invocation reads what is called: for $invoke the method name, its
// parameter types and arguments from the three arguments; else the request
// itself. Decoding into Java objects fails here (BAD_REQUEST) as it would
// in Java's hessian.
function invocation(req, cp) {
  const decoded = req.args.map((a) => java.fromWire(a, cp));
  if (isGenericCall(req)) {
    const [ name, types, args ] = decoded;
    return {
      generic: true,
      name: typeof name === 'string' ? name.trim() : String(name),
      types: types ? types.items.map(String) : null,
      args: args ? args.items : [],
    };
  }
  return { generic: false, name: req.method, types: req.paramTypes, args: decoded };
}

// findMethod matches name and erased parameter types as Java's
// ReflectUtils.findMethodByMethodSignature does (by name alone when the
// consumer sent no types).
function findMethod(exported, inv) {
  const { service, iface } = exported;
  const named = service.methods.filter((m) => m.name === inv.name);
  if (inv.types === null) {
    if (named.length === 1) {
      return named[0];
    }
    throw new java.ServiceError(named.length ? `Not unique method for method name(${inv.name}) in class(${iface})` :
      `No such method ${inv.name} in class interface ${iface}`);
  }
  const erased = inv.types.map((t) => erasedName(t, service.classpath));
  const m = named.find((x) => x.erased.length === erased.length && x.erased.every((e, i) => e === erased[i]));
  if (!m) {
    throw new java.ServiceError(`No such method ${inv.name}(${inv.types.join(', ')}) in class interface ${iface}`);
  }
  return m;
}

// erasedName is Class.getName of a type the consumer named; a name Java
// could not load fails as ClassNotFoundException.
function erasedName(t, cp) {
  let type;
  try {
    type = t.includes('<') ? null : parseType(t);
  } catch (err) {
    type = null;
  }
  let base = type;
  while (base && base.elem) {
    base = base.elem;
  }
  if (!type || !cp.knows(base.name)) {
    throw new java.ServiceError(`java.lang.ClassNotFoundException: ${t}`);
  }
  return type.name;
}

function realizeArgs(m, inv, cp) {
  if (inv.args.length !== m.types.length) {
    throw new java.ServiceError(`java.lang.IllegalArgumentException: args.length != types.length`);
  }
  return inv.args.map((a, i) => java.realize(a, m.types[i], cp, `arg${i}`));
}

// run calls the method; a StatusAnswer or JavaException it throws, sync or
// async, passes through.
async function run(m, args, conn, attachments) {
  let abandoned = null;
  const call = {
    attachments,
    status: (code, message) => { throw new StatusAnswer(code, message); },
    onAbandon: (f) => {
      abandoned = f;
      conn.abandon.add(f);
    },
  };
  try {
    return await m.run(args, call);
  } finally {
    if (abandoned) {
      conn.abandon.delete(abandoned);
    }
  }
}

function result(value, generalized) {
  if (value === null || value === undefined) {
    return { status: STATUS.OK, kind: 'null', outcome: 'null', value: null, json: null };
  }
  return { status: STATUS.OK, kind: 'value', outcome: 'value', value: java.encode(value, generalized), json: java.toJSON(value) };
}

// failure turns what a call threw into its answer: a Java exception is an
// OK response carrying it (wrapped in GenericException for a generic
// call, as GenericFilter does); the rest are status answers.
function failure(err, generic) {
  if (err instanceof java.JavaException) {
    return {
      status: STATUS.OK, kind: 'exception', outcome: 'exception',
      value: generic ? genericException(err.cls, err.message) : exceptionObject(err.cls, err.message),
      exception: { class: err.cls, message: err.message },
    };
  }
  if (err instanceof StatusAnswer) {
    return { status: err.status, outcome: 'status', message: err.message };
  }
  if (err instanceof java.DecodeError) {
    return { status: STATUS.BAD_REQUEST, outcome: 'bad_request', message: `Fail to decode request due to: ${err.message}` };
  }
  if (err instanceof java.ServiceError) {
    const msg = err.message.startsWith('java.') ? err.message : `org.apache.dubbo.rpc.RpcException: ${err.message}`;
    return { status: STATUS.SERVICE_ERROR, outcome: 'service_error', message: msg };
  }
  return { status: STATUS.SERVICE_ERROR, outcome: 'service_error', message: `java.lang.RuntimeException: ${err.message}` };
}

// isAnswer says whether err is one of the ways a call is meant to end.
function isAnswer(err) {
  return err instanceof java.JavaException || err instanceof StatusAnswer ||
    err instanceof java.DecodeError || err instanceof java.ServiceError;
}

function recordAnswer(call, answer) {
  Object.assign(call, { outcome: answer.outcome || 'status', status: answer.status });
  if (answer.exception) {
    call.exception = answer.exception;
  } else if (answer.status === STATUS.OK) {
    call.result = answer.json === undefined ? null : answer.json;
  } else {
    call.message = answer.message;
  }
}

// exceptionObject is a Throwable as Java's hessian writes it; its cause
// points at itself, as an uncaused Java Throwable's does.
function exceptionObject(cls, message) {
  const e = { $class: cls, $: { detailMessage: message, cause: null, stackTrace: stackTrace(), suppressedExceptions: [] } };
  e.$.cause = e;
  return e;
}

// genericException wraps an exception as GenericFilter does for generic
// calls: com.alibaba.dubbo.rpc.service.GenericException with the original
// class and message.
function genericException(cls, message) {
  const e = {
    $class: GENERIC_EXCEPTION,
    $: {
      exceptionClass: cls,
      exceptionMessage: message,
      detailMessage: `${cls}: ${message}`,
      cause: null,
      stackTrace: stackTrace(),
      suppressedExceptions: [],
    },
  };
  e.$.cause = e;
  return e;
}

function stackTrace() {
  return {
    $class: '[java.lang.StackTraceElement',
    $: [ {
      $class: 'java.lang.StackTraceElement',
      $: {
        declaringClass: 'com.example.TypeServiceImpl', methodName: 'invoke', fileName: 'provider.js',
        lineNumber: { $class: 'int', $: 1 },
      },
    } ],
  };
}

// supportsResponseAttachments follows Java's Version.isSupportResponseAttachment:
// protocol versions from 2.0.2 take response attachments, except the jar
// versions 2.0.10 to 2.6.2 old consumers sent instead.
function supportsResponseAttachments(version) {
  const v = versionNumber(version);
  if (v < 0 || (v >= 2001000 && v <= 2060200)) {
    return false;
  }
  return v >= 2000200;
}

function versionNumber(version) {
  if (typeof version !== 'string' || version === '') {
    return -1;
  }
  const parts = version.split('.');
  let v = 0;
  for (let i = 0; i < parts.length; i++) {
    if (!/^\d+$/.test(parts[i])) {
      return -1;
    }
    v += Number(parts[i]) * 10 ** ((parts.length - i - 1) * 2);
  }
  return parts.length === 3 ? v * 100 : v;
}

module.exports = { DubboServer, STATUS };

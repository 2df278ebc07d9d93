'use strict';

// com.example.TypeService: a method per type a mapping can declare, each
// echoing its argument, plus the behaviours a bridge must handle (zero
// arguments, null, void, a thrown exception, a slow answer, a big answer,
// any Dubbo status). Method names are those of the Go example provider
// (examples/dubbo-provider) wherever it has the same method, so one mapping
// can address both.

const {
  Classpath, JNum, Decimal, EnumValue, Pojo, JList, JMap, JavaException, newPojo, toJSON,
} = require('./java');
const { parseType } = require('./types');

const classpath = new Classpath({
  'com.example.Status': { constants: [ 'ACTIVE', 'SUSPENDED' ] },
  'com.example.Address': {
    fields: [ [ 'city', 'java.lang.String' ], [ 'street', 'java.lang.String' ] ],
  },
  'com.example.User': {
    fields: [
      [ 'id', 'long' ],
      [ 'name', 'java.lang.String' ],
      [ 'age', 'int' ],
      [ 'status', 'com.example.Status' ],
      [ 'balance', 'java.math.BigDecimal' ],
      [ 'created', 'java.util.Date' ],
      [ 'tags', 'java.util.List<java.lang.String>' ],
      [ 'address', 'com.example.Address' ],
      [ 'scores', 'java.util.Map<java.lang.String, java.lang.Long>' ],
      [ 'active', 'boolean' ],
      [ 'rating', 'double' ],
      [ 'big', 'java.math.BigInteger' ],
      [ 'avatar', 'byte[]' ],
    ],
  },
  // A field of every kind a mapping can declare, as the Go example
  // provider's AllTypes has them.
  'com.example.AllTypes': {
    fields: [
      [ 'flag', 'boolean' ],
      [ 'small', 'byte' ],
      [ 'short16', 'short' ],
      [ 'count', 'int' ],
      [ 'total', 'long' ],
      [ 'ratio', 'float' ],
      [ 'score', 'double' ],
      [ 'initial', 'char' ],
      [ 'boxedFlag', 'java.lang.Boolean' ],
      [ 'boxedSmall', 'java.lang.Byte' ],
      [ 'boxedShort', 'java.lang.Short' ],
      [ 'boxedCount', 'java.lang.Integer' ],
      [ 'boxedTotal', 'java.lang.Long' ],
      [ 'boxedRatio', 'java.lang.Float' ],
      [ 'boxedScore', 'java.lang.Double' ],
      [ 'boxedInitial', 'java.lang.Character' ],
      [ 'text', 'java.lang.String' ],
      [ 'amount', 'java.math.BigDecimal' ],
      [ 'huge', 'java.math.BigInteger' ],
      [ 'when', 'java.util.Date' ],
      [ 'data', 'byte[]' ],
      [ 'status', 'com.example.Status' ],
      [ 'ints', 'int[]' ],
      [ 'names', 'java.lang.String[]' ],
      [ 'addresses', 'com.example.Address[]' ],
      [ 'tags', 'java.util.List<java.lang.String>' ],
      [ 'labels', 'java.util.Set<java.lang.String>' ],
      [ 'scores', 'java.util.Map<java.lang.String, java.lang.Long>' ],
      [ 'statuses', 'java.util.List<com.example.Status>' ],
      [ 'statusByName', 'java.util.Map<java.lang.String, com.example.Status>' ],
      [ 'users', 'java.util.List<com.example.User>' ],
      [ 'userByName', 'java.util.Map<java.lang.String, com.example.User>' ],
      [ 'address', 'com.example.Address' ],
      [ 'user', 'com.example.User' ],
      [ 'any', 'java.lang.Object' ],
    ],
  },
});

const ECHOES = {
  echoBoolean: 'boolean',
  echoInt: 'int',
  echoLong: 'long',
  echoShort: 'short',
  echoByte: 'byte',
  echoFloat: 'float',
  echoDouble: 'double',
  echoString: 'java.lang.String',
  echoBoxedLong: 'java.lang.Long',
  echoDecimal: 'java.math.BigDecimal',
  echoBigInteger: 'java.math.BigInteger',
  echoDate: 'java.util.Date',
  echoBytes: 'byte[]',
  echoInts: 'int[]',
  echoStrings: 'java.lang.String[]',
  echoList: 'java.util.List<java.lang.String>',
  echoSet: 'java.util.Set<java.lang.String>',
  echoMap: 'java.util.Map<java.lang.String, java.lang.Long>',
  echoStatus: 'com.example.Status',
  echoStatuses: 'java.util.List<com.example.Status>',
  echoAddress: 'com.example.Address',
  echoUser: 'com.example.User',
  echoUsers: 'java.util.List<com.example.User>',
  echoObject: 'java.lang.Object',
  // The type matrix's methods, named as in the Go example provider.
  boxBoolean: 'java.lang.Boolean',
  boxByte: 'java.lang.Byte',
  boxShort: 'java.lang.Short',
  boxInteger: 'java.lang.Integer',
  boxLong: 'java.lang.Long',
  boxFloat: 'java.lang.Float',
  boxDouble: 'java.lang.Double',
  boxCharacter: 'java.lang.Character',
  echoChar: 'char',
  echoStatusMap: 'java.util.Map<java.lang.String, com.example.Status>',
  echoAddresses: 'com.example.Address[]',
  echoUserMap: 'java.util.Map<java.lang.String, com.example.User>',
  echoAllTypes: 'com.example.AllTypes',
  echoLongKeys: 'java.util.Map<java.lang.Long, java.lang.String>',
  echoNested: 'java.util.Map<java.lang.String, java.util.List<java.lang.Long>>',
};

// newService returns the service's methods: name, parameter types, and
// run(args, call) giving the result (or a promise of it), throwing a
// JavaException for a Java exception. call has the attachments and the
// provider's status answer.
function newService() {
  const state = { seq: 0, last: '' };
  const methods = Object.entries(ECHOES).map(([ name, type ]) => method(name, [ type ], ([ v ]) => v));
  methods.push(
    method('ping', [], () => 'pong'),
    method('returnNull', [], () => null),
    method('voidCall', [ 'java.lang.String' ], () => undefined),
    method('lastCall', [], () => state.last),
    method('fail', [ 'java.lang.String' ], ([ kind ]) => fail(kind)),
    method('slow', [ 'long' ], ([ ms ], call) => sleep(Number(ms.v), call).then(() => 'done')),
    method('attachments', [ 'java.lang.String' ], (_, call) => stringMap(call.attachments)),
    method('bigString', [ 'int' ], ([ n ]) => 'x'.repeat(n.v)),
    method('bigBytes', [ 'int' ], ([ n ]) => Buffer.alloc(n.v, 0x61)),
    method('respondStatus', [ 'int' ], ([ code ], call) => call.status(code.v, `status ${code.v} as asked`)),
    method('createUser', [ 'com.example.User' ], ([ u ]) => createUser(state, u)),
    method('getUser', [ 'long' ], ([ id ]) => sampleUser(id.v, 'ACTIVE')),
    method('findUsers', [ 'com.example.Status', 'java.lang.Integer' ], ([ status, limit ]) => findUsers(status, limit)),
  );
  const remember = (name, args) => {
    state.last = `${name}(${args.map((a) => JSON.stringify(toJSON(a))).join(', ')})`;
  };
  return { classpath, methods, remember };
}

function method(name, params, run) {
  const types = params.map(parseType);
  return { name, params, types, erased: types.map((t) => t.name), run };
}

// fail throws as the Go example provider's fail does.
function fail(kind) {
  if (kind === 'argument') {
    throw new JavaException('java.lang.IllegalArgumentException', `bad argument: ${kind}`);
  }
  throw new JavaException('java.lang.IllegalStateException', `provider failure: ${kind}`);
}

// sleep waits ms milliseconds, less if the consumer's connection closes.
function sleep(ms, call) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms));
    call.onAbandon(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function stringMap(attachments) {
  return new JMap(Object.entries(attachments).map(([ k, v ]) => [ k, String(v) ]));
}

function createUser(state, u) {
  if (!u || !u.fields.get('name')) {
    throw new JavaException('java.lang.IllegalArgumentException', 'name is required');
  }
  state.seq++;
  const fields = new Map(u.fields);
  fields.set('id', new JNum('long', BigInt(state.seq)));
  return new Pojo(u.cls, fields);
}

// sampleUser is the user getUser answers, as in the Go example provider.
function sampleUser(id, status) {
  return newPojo(classpath, 'com.example.User', {
    id: new JNum('long', BigInt(id)),
    name: `user-${id}`,
    age: new JNum('int', 30),
    status: new EnumValue('com.example.Status', status),
    balance: new Decimal('12.50'),
    created: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
    tags: new JList('java.util.ArrayList', [ 'a' ]),
    address: newPojo(classpath, 'com.example.Address', { city: 'Oslo', street: '' }),
    scores: new JMap([]),
  });
}

function findUsers(status, limit) {
  const n = limit ? limit.v : 2;
  const users = [];
  for (let i = 1; i <= n; i++) {
    users.push(sampleUser(BigInt(i), status ? status.name : 'ACTIVE'));
  }
  return new JList('java.util.ArrayList', users);
}

module.exports = { newService, classpath };

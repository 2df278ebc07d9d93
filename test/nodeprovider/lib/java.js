'use strict';

// Java values as a Java provider holds them, and the conversions it applies:
//
//  1. fromWire: hessian into Java objects, as Java's hessian does while the
//     request is decoded. A class the provider knows (its "classpath") is
//     built field by field with the field's declared type, strictly: an enum
//     field given a string, or a BigDecimal field given a string, fails the
//     decoding (the provider answers BAD_REQUEST). Unknown classes become
//     maps.
//  2. realize: what Dubbo's GenericFilter (PojoUtils.realize) does to each
//     $invoke argument for the method's declared parameter type: leniently,
//     maps become POJOs, strings become enums, numbers, BigDecimals, dates.
//     A failure there is a service error (status 70), as in Java.
//  3. encode: a result back into hessian, generalized as GenericFilter does
//     for generic calls (POJOs as maps with a "class" key, enums as their
//     names) or typed (POJOs and enums as hessian objects).
//
// Representation: null, boolean, string, Date, Buffer (byte[]), and the
// classes below.

const { COLLECTIONS, MAPS, parseType, hessianArrayName, isPrimitive } = require('./types');
const { isUntyped } = require('./codec');

class JNum {
  // kind: int, short, byte, long (v a BigInt), float or double.
  constructor(kind, v) {
    this.kind = kind;
    this.v = v;
  }
}

class Decimal {
  constructor(text) {
    this.text = text;
  }
}

class BigInteger {
  constructor(v) {
    this.v = v;
  }
}

class EnumValue {
  constructor(cls, name) {
    this.cls = cls;
    this.name = name;
  }
}

class Pojo {
  constructor(cls, fields) {
    this.cls = cls;
    this.fields = fields; // Map: field name → value, in declared order
  }
}

class JList {
  // cls: java.util.ArrayList, java.util.HashSet, or a hessian array name.
  constructor(cls, items) {
    this.cls = cls;
    this.items = items;
  }
}

class JMap {
  constructor(entries) {
    this.entries = entries; // [[key, value]]
  }

  get(key) {
    const e = this.entries.find(([ k ]) => k === key);
    return e ? e[1] : undefined;
  }
}

// DecodeError: Java's hessian could not build the request (status 40).
class DecodeError extends Error {}
// ServiceError: the call failed around the method (status 70).
class ServiceError extends Error {}
// JavaException: the method threw; the result carries it.
class JavaException {
  constructor(cls, message) {
    this.cls = cls;
    this.message = message;
  }
}

const NUMBER_KINDS = {
  int: 'int', 'java.lang.Integer': 'int', short: 'short', 'java.lang.Short': 'short',
  byte: 'byte', 'java.lang.Byte': 'byte', long: 'long', 'java.lang.Long': 'long',
  float: 'float', 'java.lang.Float': 'float', double: 'double', 'java.lang.Double': 'double',
  'java.lang.Number': 'double',
};
const BOOLEANS = new Set([ 'boolean', 'java.lang.Boolean' ]);
const CHARS = new Set([ 'char', 'java.lang.Character' ]);
const DECIMAL = 'java.math.BigDecimal';
const BIGINT = 'java.math.BigInteger';
const DATE = 'java.util.Date';
const STRING = 'java.lang.String';
const OBJECT = 'java.lang.Object';
const DECIMAL_SYNTAX = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER_SYNTAX = /^[+-]?\d+$/;

// Classpath: the classes a provider has, by name.
class Classpath {
  constructor(defs) {
    this.defs = new Map(Object.entries(defs));
    for (const def of this.defs.values()) {
      if (def.fields) {
        def.fieldTypes = def.fields.map(([ name, type ]) => [ name, parseType(type) ]);
      }
    }
  }

  get(name) {
    return this.defs.get(name);
  }

  // knows says whether Java reflection would find the class.
  knows(name) {
    return this.defs.has(name) || name.startsWith('java.') || isPrimitive({ name }) || name.startsWith('[');
  }
}

// ---- 1. hessian → Java objects (decode time, strict for known classes) ----

function fromWire(node, cp, seen = new Map()) {
  if (node === null || node === undefined) {
    return null;
  }
  if (seen.has(node)) {
    return seen.get(node);
  }
  const scalar = scalarFromWire(node);
  if (scalar !== undefined) {
    return scalar;
  }
  if (node.isMap) {
    const m = new JMap([]);
    seen.set(node, m);
    for (const [ k, v ] of node.$) {
      m.entries.push([ fromWire(k, cp, seen), fromWire(v, cp, seen) ]);
    }
    return m;
  }
  if (Array.isArray(node.$)) {
    const l = new JList(isUntyped(node) ? 'java.util.ArrayList' : node.$class, []);
    seen.set(node, l);
    for (const item of node.$) {
      l.items.push(fromWire(item, cp, seen));
    }
    return l;
  }
  return objectFromWire(node, cp, seen);
}

// scalarFromWire converts the tagged scalars; undefined for anything else.
function scalarFromWire(node) {
  switch (node.$class) {
  case 'boolean': case STRING: case DATE: case '[B':
    return node.$;
  case 'int':
    return new JNum('int', node.$);
  case 'long':
    return new JNum('long', BigInt(node.$));
  case 'double':
    return new JNum('double', node.$);
  default:
    return undefined;
  }
}

function objectFromWire(node, cp, seen) {
  const fields = node.$ || {};
  const def = cp.get(node.$class);
  if (node.$class === DECIMAL) {
    return decimalOf(wireText(fields.value), 'java.math.BigDecimal', DecodeError);
  }
  if (node.$class === BIGINT) {
    return bigIntegerFromWords(fields);
  }
  if (def && def.constants) {
    return enumOf(def, node.$class, wireText(fields.name), DecodeError);
  }
  if (def && def.fields) {
    return pojoStrict(node.$class, def, (name) => fields[name], cp, seen, node);
  }
  // Java's hessian reads an object of a class it does not have as a map.
  const m = new JMap([]);
  seen.set(node, m);
  for (const [ name, v ] of Object.entries(fields)) {
    m.entries.push([ name, fromWire(v, cp, seen) ]);
  }
  return m;
}

function wireText(node) {
  return node && node.$class === STRING ? node.$ : null;
}

// pojoStrict builds a known class from its wire fields, each decoded as its
// declared type requires. Fields the class lacks are skipped, fields the
// wire lacks keep Java's default.
function pojoStrict(cls, def, field, cp, seen, node) {
  const p = new Pojo(cls, new Map());
  if (node) {
    seen.set(node, p);
  }
  for (const [ name, type ] of def.fieldTypes) {
    p.fields.set(name, strictField(field(name), type, cp, seen, `${cls}.${name}`));
  }
  return p;
}

// strictField decodes one field value as Java's hessian field deserializer
// for its declared type does: numbers and booleans convert among
// themselves, everything else must arrive in its own hessian form.
function strictField(node, type, cp, seen, where) {
  if (node === undefined || node === null) {
    return defaultValue(type);
  }
  const n = type.name;
  if (BOOLEANS.has(n) || NUMBER_KINDS[n]) {
    return strictNumber(node, type, where);
  }
  if (CHARS.has(n)) {
    return strictChar(node, type, where);
  }
  if (n === STRING) {
    if ([ STRING, 'int', 'long', 'double', 'boolean' ].includes(node.$class)) {
      return String(node.$);
    }
    throw mismatch(DecodeError, where, type, node);
  }
  if (type.elem) {
    return strictArray(node, type, cp, seen, where);
  }
  const v = fromWire(node, cp, seen);
  if (COLLECTIONS[n] && v instanceof JList) {
    return new JList(COLLECTIONS[n], v.items);
  }
  if ((MAPS.has(n) && v instanceof JMap) || n === OBJECT) {
    return v;
  }
  const def = cp.get(n);
  if (n === DECIMAL && v instanceof JMap) {
    return decimalOf(v.get('value'), DECIMAL, DecodeError);
  }
  if (def && def.fields && v instanceof JMap) {
    // A map where a POJO is declared: Java reads the map into the class.
    return pojoStrict(n, def, (name) => wireField(node, name), cp, seen);
  }
  if (sameClass(v, n)) {
    return v;
  }
  throw mismatch(DecodeError, where, type, node);
}

function wireField(mapNode, name) {
  if (mapNode.isMap) {
    const e = mapNode.$.find(([ k ]) => wireText(k) === name);
    return e ? e[1] : undefined;
  }
  return (mapNode.$ || {})[name];
}

function strictNumber(node, type, where) {
  let v;
  switch (node.$class) {
  case 'int': case 'double': v = node.$; break;
  case 'long': v = BigInt(node.$); break;
  case 'boolean': v = node.$ ? 1 : 0; break;
  default: throw mismatch(DecodeError, where, type, node);
  }
  if (BOOLEANS.has(type.name)) {
    return v !== 0 && v !== 0n;
  }
  return convertNumber(NUMBER_KINDS[type.name], v);
}

// strictChar reads a char field as Java's hessian does: from a string, its
// first UTF-16 unit; an empty string is '\0' for char and null for
// Character.
function strictChar(node, type, where) {
  if (node.$class !== STRING) {
    throw mismatch(DecodeError, where, type, node);
  }
  if (node.$.length === 0) {
    return type.name === 'char' ? '\u0000' : null;
  }
  return node.$[0];
}

function strictArray(node, type, cp, seen, where) {
  if (type.name === '[B') {
    if (node.$class === '[B') {
      return node.$;
    }
    throw mismatch(DecodeError, where, type, node);
  }
  if (!Array.isArray(node.$)) {
    throw mismatch(DecodeError, where, type, node);
  }
  const items = node.$.map((item, i) => strictField(item, type.elem, cp, seen, `${where}[${i}]`));
  return new JList(hessianArrayName(type), items);
}

// sameClass says whether an already decoded value is of class name.
function sameClass(v, name) {
  switch (name) {
  case DECIMAL: return v instanceof Decimal;
  case BIGINT: return v instanceof BigInteger;
  case DATE: return v instanceof Date;
  default: return (v instanceof Pojo || v instanceof EnumValue) && v.cls === name;
  }
}

// ---- 2. the generic filter's realize (lenient) ----

// realize converts a decoded argument to its declared parameter type.
function realize(v, type, cp, where) {
  if (v === null || v === undefined) {
    if (isPrimitive(type)) {
      throw new ServiceError(`argument ${where}: null for the primitive ${type.name}`);
    }
    return null;
  }
  const n = type.name;
  if (NUMBER_KINDS[n] || BOOLEANS.has(n)) {
    return realizeScalar(v, type, where);
  }
  if (CHARS.has(n)) {
    return realizeChar(v, type, where);
  }
  if (type.elem) {
    return realizeArray(v, type, cp, where);
  }
  if (COLLECTIONS[n]) {
    return realizeCollection(v, type, cp, where);
  }
  if (MAPS.has(n)) {
    return realizeMap(v, type, cp, where);
  }
  return realizeClass(v, type, cp, where);
}

function realizeScalar(v, type, where) {
  const boolean = BOOLEANS.has(type.name);
  if (typeof v === 'boolean' && boolean) {
    return v;
  }
  if (typeof v === 'string') {
    return boolean ? v === 'true' : convertNumber(NUMBER_KINDS[type.name], parseNumber(v, type));
  }
  if (v instanceof JNum && !boolean) {
    return convertNumber(NUMBER_KINDS[type.name], v.v);
  }
  throw mismatch(ServiceError, where, type, v);
}

// realizeChar: PojoUtils takes a char only from a string of exactly one
// UTF-16 unit (CompatibleTypeUtils).
function realizeChar(v, type, where) {
  if (typeof v !== 'string') {
    throw mismatch(ServiceError, where, type, v);
  }
  if (v.length !== 1) {
    throw new ServiceError(`java.lang.IllegalArgumentException: CAN NOT convert String(${v}) to char!`);
  }
  return v;
}

function parseNumber(s, type) {
  const kind = NUMBER_KINDS[type.name];
  const integral = kind !== 'float' && kind !== 'double';
  if (integral ? !INTEGER_SYNTAX.test(s.trim()) : !DECIMAL_SYNTAX.test(s.trim())) {
    throw new ServiceError(`java.lang.NumberFormatException: For input string: "${s}"`);
  }
  return integral ? BigInt(s.trim()) : Number(s);
}

function realizeArray(v, type, cp, where) {
  if (type.name === '[B' && Buffer.isBuffer(v)) {
    return v;
  }
  if (!(v instanceof JList)) {
    throw mismatch(ServiceError, where, type, v);
  }
  const items = v.items.map((item, i) => realize(item, type.elem, cp, `${where}[${i}]`));
  if (type.name === '[B') {
    return Buffer.from(items.map((b) => b.v & 0xff));
  }
  return new JList(hessianArrayName(type), items);
}

function realizeCollection(v, type, cp, where) {
  if (!(v instanceof JList)) {
    throw mismatch(ServiceError, where, type, v);
  }
  const elem = type.params[0];
  const items = elem ? v.items.map((item, i) => realize(item, elem, cp, `${where}[${i}]`)) : v.items;
  return new JList(COLLECTIONS[type.name], items);
}

function realizeMap(v, type, cp, where) {
  if (!(v instanceof JMap)) {
    throw mismatch(ServiceError, where, type, v);
  }
  const [ kt, vt ] = type.params;
  if (!kt) {
    return v;
  }
  return new JMap(v.entries.map(([ k, val ]) => [
    realize(k, kt, cp, `${where} key`),
    realize(val, vt, cp, `${where}[${keyText(k)}]`),
  ]));
}

function realizeClass(v, type, cp, where) {
  const n = type.name;
  switch (n) {
  case STRING:
    if (typeof v === 'string') return v;
    break;
  case DECIMAL:
    if (v instanceof Decimal) return v;
    if (typeof v === 'string') return decimalOf(v, 'java.math.BigDecimal', ServiceError);
    if (v instanceof JNum) return new Decimal(String(v.v));
    break;
  case BIGINT:
    if (v instanceof BigInteger) return v;
    if (typeof v === 'string' && INTEGER_SYNTAX.test(v.trim())) return new BigInteger(BigInt(v.trim()));
    if (v instanceof JNum && v.kind !== 'double' && v.kind !== 'float') return new BigInteger(BigInt(v.v));
    break;
  case DATE:
    if (v instanceof Date) return v;
    if (v instanceof JNum) return new Date(Number(v.v));
    if (typeof v === 'string') return parseJavaDate(v);
    break;
  case OBJECT:
    return v instanceof JMap ? realizeClassKey(v, cp, where) || v : v;
  default:
    return realizeDeclared(v, type, cp, where);
  }
  throw mismatch(ServiceError, where, type, v);
}

function realizeDeclared(v, type, cp, where) {
  const def = cp.get(type.name);
  if (!def) {
    return v; // a class this provider does not declare: taken as it came
  }
  if (def.constants) {
    if (v instanceof EnumValue && v.cls === type.name) return v;
    if (typeof v === 'string') return enumOf(def, type.name, v, ServiceError);
    throw mismatch(ServiceError, where, type, v);
  }
  if (v instanceof Pojo && v.cls === type.name) {
    return v;
  }
  if (v instanceof JMap) {
    const named = realizeClassKey(v, cp, where);
    if (named && named.cls !== type.name) {
      throw new ServiceError(`argument ${where}: the map's class ${named.cls} is not ${type.name}`);
    }
    return named || pojoLenient(type.name, def, v, cp, where);
  }
  throw mismatch(ServiceError, where, type, v);
}

// realizeClassKey builds the POJO a map's "class" key names, as PojoUtils
// does; null when the map has none.
function realizeClassKey(m, cp, where) {
  const cls = m.get('class');
  if (typeof cls !== 'string') {
    return null;
  }
  const def = cp.get(cls);
  if (!def || !def.fields) {
    throw new ServiceError(`java.lang.ClassNotFoundException: ${cls}`);
  }
  return pojoLenient(cls, def, m, cp, where);
}

function pojoLenient(cls, def, m, cp, where) {
  const p = new Pojo(cls, new Map());
  for (const [ name, type ] of def.fieldTypes) {
    const v = m.get(name);
    p.fields.set(name, v === undefined ? defaultValue(type) : realize(v, type, cp, `${where}.${name}`));
  }
  return p;
}

// parseJavaDate reads the one text form Dubbo's CompatibleTypeUtils takes,
// "yyyy-MM-dd HH:mm:ss" (here in UTC).
function parseJavaDate(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(s);
  if (!m) {
    throw new ServiceError(`java.text.ParseException: Unparseable date: "${s}"`);
  }
  return new Date(Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

// ---- shared conversions ----

// convertNumber narrows or widens as Java's casts do: integral sources
// wrap, floating ones truncate and saturate.
function convertNumber(kind, v) {
  if (kind === 'float') return new JNum(kind, Math.fround(Number(v)));
  if (kind === 'double') return new JNum(kind, Number(v));
  const bits = { int: 32, short: 16, byte: 8, long: 64 }[kind];
  let b;
  if (typeof v === 'bigint') {
    b = v;
  } else if (Number.isNaN(v)) {
    b = 0n;
  } else {
    const max = 2n ** BigInt(bits - 1);
    b = Number.isFinite(v) ? BigInt(Math.trunc(v)) : (v > 0 ? max - 1n : -max);
    b = b >= max ? max - 1n : (b < -max ? -max : b);
  }
  const wrapped = BigInt.asIntN(bits, b);
  return new JNum(kind, kind === 'long' ? wrapped : Number(wrapped));
}

// newPojo builds an instance of a known class: every field in declared
// order, Java's default where values has none.
function newPojo(cp, cls, values) {
  const p = new Pojo(cls, new Map());
  for (const [ name, type ] of cp.get(cls).fieldTypes) {
    p.fields.set(name, values[name] !== undefined ? values[name] : defaultValue(type));
  }
  return p;
}

function defaultValue(type) {
  if (BOOLEANS.has(type.name)) return type.name === 'boolean' ? false : null;
  if (type.name === 'char') return '\u0000';
  if (isPrimitive(type)) return convertNumber(NUMBER_KINDS[type.name], 0);
  return null;
}

function decimalOf(text, cls, Err) {
  if (typeof text !== 'string' || !DECIMAL_SYNTAX.test(text)) {
    throw new Err(`java.lang.NumberFormatException: ${cls} from ${JSON.stringify(text)}`);
  }
  return new Decimal(text);
}

function enumOf(def, cls, name, Err) {
  if (!def.constants.includes(name)) {
    throw new Err(`java.lang.IllegalArgumentException: No enum constant ${cls}.${name}`);
  }
  return new EnumValue(cls, name);
}

// bigIntegerFromWords reads Java's BigInteger fields: signum and mag, the
// magnitude as big-endian 32-bit words.
function bigIntegerFromWords(fields) {
  const signum = fields.signum ? Number(fields.signum.$) : 0;
  const words = fields.mag && Array.isArray(fields.mag.$) ? fields.mag.$ : [];
  let v = 0n;
  for (const w of words) {
    v = (v << 32n) | BigInt(w.$ >>> 0);
  }
  return new BigInteger(signum < 0 ? -v : v);
}

function mismatch(Err, where, type, got) {
  return new Err(`${where}: expected ${type.name}, got ${describe(got)}`);
}

// describe names what a value is, for error messages.
function describe(v) {
  if (v === null || v === undefined) return 'null';
  if (v.$class) return `hessian ${v.$class}`;
  if (typeof v === 'string') return 'java.lang.String';
  if (typeof v === 'boolean') return 'java.lang.Boolean';
  if (v instanceof JNum) return v.kind;
  if (v instanceof Pojo || v instanceof EnumValue) return v.cls;
  if (v instanceof JMap) return 'java.util.HashMap';
  if (v instanceof JList) return v.cls;
  return v.constructor.name;
}

function keyText(k) {
  if (typeof k === 'string') return k;
  if (k instanceof JNum) return String(k.v);
  if (k instanceof EnumValue) return k.name;
  return JSON.stringify(toJSON(k));
}

// ---- 3. Java objects → hessian.js values ----

// encode writes v for hessian.js. generalized: as GenericFilter answers a
// generic call (POJOs as HashMaps with "class", enums as names).
function encode(v, generalized) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean' || typeof v === 'string' || v instanceof Date || Buffer.isBuffer(v)) return v;
  if (v instanceof JNum) return encodeNumber(v);
  if (v instanceof Decimal) return { $class: DECIMAL, $: { value: v.text } };
  if (v instanceof BigInteger) return encodeBigInteger(v.v);
  if (v instanceof EnumValue) return generalized ? v.name : { $class: v.cls, $: { name: v.name } };
  if (v instanceof Pojo) return encodePojo(v, generalized);
  if (v instanceof JList) return encodeList(v, generalized);
  if (v instanceof JMap) {
    return { $class: 'java.util.HashMap', $: new Map(v.entries.map(([ k, x ]) => [ encode(k, generalized), encode(x, generalized) ])) };
  }
  throw new Error(`cannot encode ${describe(v)}`);
}

function encodeNumber(n) {
  switch (n.kind) {
  case 'long': {
    const safe = n.v <= BigInt(Number.MAX_SAFE_INTEGER) && n.v >= BigInt(Number.MIN_SAFE_INTEGER);
    return { $class: 'long', $: safe ? Number(n.v) : n.v.toString() };
  }
  case 'float': case 'double':
    return { $class: 'double', $: n.v };
  default:
    return { $class: 'int', $: n.v };
  }
}

function encodePojo(p, generalized) {
  const fields = {};
  if (generalized) {
    fields.class = p.cls;
  }
  for (const [ name, v ] of p.fields) {
    fields[name] = encode(v, generalized);
  }
  return { $class: generalized ? 'java.util.HashMap' : p.cls, $: fields };
}

function encodeList(l, generalized) {
  const items = l.items.map((x) => encode(x, generalized));
  // Java writes an ArrayList as an untyped list.
  if (l.cls === 'java.util.ArrayList') {
    return items;
  }
  const objects = l.cls.startsWith('[') && l.items.some((x) => x instanceof Pojo || x instanceof EnumValue);
  return { $class: generalized && objects ? '[object' : l.cls, $: items };
}

// encodeBigInteger writes java.math.BigInteger's serialized fields (Java 8
// names): signum and the magnitude as big-endian 32-bit words.
function encodeBigInteger(v) {
  const signum = v === 0n ? 0 : (v < 0n ? -1 : 1);
  let mag = v < 0n ? -v : v;
  const words = [];
  while (mag > 0n) {
    words.unshift(Number(BigInt.asIntN(32, mag & 0xffffffffn)));
    mag >>= 32n;
  }
  const zero = { $class: 'int', $: 0 };
  return {
    $class: BIGINT,
    $: {
      signum: { $class: 'int', $: signum }, bitCount: zero, bitLength: zero, lowestSetBit: zero,
      firstNonzeroIntNum: zero, mag: { $class: '[int', $: words.map((w) => ({ $class: 'int', $: w })) },
    },
  };
}

// ---- JSON views, for /received ----

// toJSON renders a Java object plainly, as a client would read it: numbers
// (longs beyond 2^53 as strings), BigDecimal/BigInteger as strings, dates
// in RFC 3339, byte[] base64, enums by name, POJOs and maps as objects.
function toJSON(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (v instanceof JNum) return typeof v.v === 'bigint' ? safeBig(v.v) : v.v;
  if (v instanceof Decimal) return v.text;
  if (v instanceof BigInteger) return v.v.toString();
  if (v instanceof EnumValue) return v.name;
  if (v instanceof Pojo) return Object.fromEntries([ ...v.fields ].map(([ k, x ]) => [ k, toJSON(x) ]));
  if (v instanceof JList) return v.items.map(toJSON);
  if (v instanceof JMap) return Object.fromEntries(v.entries.map(([ k, x ]) => [ keyText(k), toJSON(x) ]));
  return String(v);
}

function safeBig(b) {
  return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(b) : b.toString();
}

// wireJSON renders a tagged hessian value with its hessian class at every
// level: {"$class": ..., "$": ...}; lists and maps say whether they were
// written untyped; map entries are [key, value] pairs.
function wireJSON(node, seen = new Set()) {
  if (node === null || node === undefined) return null;
  if (seen.has(node)) return { $ref: node.$class };
  switch (node.$class) {
  case 'java.util.Date': return { $class: node.$class, $: node.$.toISOString() };
  case '[B': return { $class: node.$class, $: node.$.toString('base64') };
  case 'boolean': case 'int': case 'long': case 'double': case STRING:
    return { $class: node.$class, $: node.$ };
  default:
    break;
  }
  seen.add(node);
  if (node.isMap) {
    return { $class: node.$class, untyped: isUntyped(node), $: node.$.map(([ k, v ]) => [ wireJSON(k, seen), wireJSON(v, seen) ]) };
  }
  if (Array.isArray(node.$)) {
    return { $class: node.$class, untyped: isUntyped(node), $: node.$.map((x) => wireJSON(x, seen)) };
  }
  const fields = {};
  for (const [ k, v ] of Object.entries(node.$ || {})) {
    fields[k] = wireJSON(v, seen);
  }
  return { $class: node.$class, $: fields };
}

module.exports = {
  Classpath,
  JNum,
  Decimal,
  BigInteger,
  EnumValue,
  Pojo,
  JList,
  JMap,
  DecodeError,
  ServiceError,
  JavaException,
  fromWire,
  realize,
  newPojo,
  encode,
  toJSON,
  wireJSON,
};

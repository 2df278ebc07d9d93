'use strict';

// Java type names, as a mapping or a generic call writes them, and the
// erased names Java's reflection compares.

const PRIMITIVE_CODES = {
  boolean: 'Z', byte: 'B', char: 'C', short: 'S', int: 'I', long: 'J', float: 'F', double: 'D',
};
const CODE_PRIMITIVES = Object.fromEntries(Object.entries(PRIMITIVE_CODES).map(([ k, v ]) => [ v, k ]));

// Hessian's names for arrays, as Java's serializer writes them.
const HESSIAN_ARRAY_NAMES = {
  boolean: '[boolean', byte: '[byte', char: '[char', short: '[short', int: '[int', long: '[long',
  float: '[float', double: '[double', 'java.lang.String': '[string', 'java.lang.Object': '[object',
};

const COLLECTIONS = {
  'java.util.List': 'java.util.ArrayList',
  'java.util.ArrayList': 'java.util.ArrayList',
  'java.util.Collection': 'java.util.ArrayList',
  'java.util.Set': 'java.util.HashSet',
  'java.util.HashSet': 'java.util.HashSet',
};
const MAPS = new Set([ 'java.util.Map', 'java.util.HashMap' ]);

// parseType reads "int", "int[]", "[I", "[Ljava.lang.String;" or
// "java.util.Map<java.lang.String, java.lang.Long>" into
// {name (erased, as Class.getName says it), params, elem (arrays)}.
function parseType(text) {
  const s = text.trim();
  if (s.endsWith('[]')) {
    return arrayOf(parseType(s.slice(0, -2)));
  }
  if (s.startsWith('[')) {
    return arrayOf(parseDescriptor(s.slice(1)));
  }
  const lt = s.indexOf('<');
  if (lt < 0) {
    return { name: s, params: [] };
  }
  if (!s.endsWith('>')) {
    throw new Error(`malformed type ${text}`);
  }
  return { name: s.slice(0, lt).trim(), params: splitParams(s.slice(lt + 1, -1)).map(parseType), generic: true };
}

// parseDescriptor reads the part of a JVM array name after one '['.
function parseDescriptor(d) {
  if (d.startsWith('[')) {
    return arrayOf(parseDescriptor(d.slice(1)));
  }
  if (d.startsWith('L') && d.endsWith(';')) {
    return { name: d.slice(1, -1), params: [] };
  }
  if (CODE_PRIMITIVES[d]) {
    return { name: CODE_PRIMITIVES[d], params: [] };
  }
  throw new Error(`malformed array type [${d}`);
}

function arrayOf(elem) {
  let code = PRIMITIVE_CODES[elem.name];
  if (!code) {
    code = elem.name.startsWith('[') ? elem.name : `L${elem.name};`;
  }
  return { name: `[${code}`, params: [], elem };
}

// splitParams splits "A, B<C, D>" at its top-level commas.
function splitParams(s) {
  const out = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '<') depth++;
    if (s[i] === '>') depth--;
    if (s[i] === ',' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

// hessianArrayName is the list type Java's hessian writes for an array type.
function hessianArrayName(type) {
  const e = type.elem;
  return HESSIAN_ARRAY_NAMES[e.name] || `[${e.name}`;
}

function isPrimitive(type) {
  return Object.prototype.hasOwnProperty.call(PRIMITIVE_CODES, type.name);
}

module.exports = {
  COLLECTIONS,
  MAPS,
  parseType,
  hessianArrayName,
  isPrimitive,
};

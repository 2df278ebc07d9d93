'use strict';

// Dubbo request and response bodies in hessian2, with hessian.js.
//
// hessian.js's own decoder returns ints, longs and doubles alike as numbers
// and untyped lists as bare arrays, even when asked for types. A provider
// that records what it received, the way a Java provider would see it, needs
// each value's hessian kind, so TaggedDecoder tags every value:
// {$class: 'int' | 'long' | 'double' | 'boolean' | 'java.lang.String' |
// 'java.util.Date' | '[B' | a list, map or object class, $: value}.

const hessian = require('hessian.js');
const { desc2classArray } = require('dubbo-remoting/lib/utils');

const UNTYPED = Symbol('untyped');

// Each hessian byte code's reader, with the scalar readers swapped for
// tagging ones; list codes the base decoder lacks (variable length) added.
const TAGGED_CODES = Object.assign({}, new hessian.DecoderV2().BYTE_CODES);
const SCALARS = {
  readBool: [ 'boolean', 'tReadBool' ],
  readInt: [ 'int', 'tReadInt' ],
  readLong: [ 'long', 'tReadLong' ],
  readDouble: [ 'double', 'tReadDouble' ],
  readString: [ 'java.lang.String', 'tReadString' ],
  readDate: [ 'java.util.Date', 'tReadDate' ],
  readBytes: [ '[B', 'tReadBytes' ],
};
for (const code of Object.keys(TAGGED_CODES)) {
  const scalar = SCALARS[TAGGED_CODES[code]];
  if (scalar) {
    TAGGED_CODES[code] = scalar[1];
  }
}
TAGGED_CODES[0x55] = 'readVarList';
TAGGED_CODES[0x57] = 'readVarList';

class TaggedDecoder extends hessian.DecoderV2 {
  constructor(buf) {
    super(buf);
    this.BYTE_CODES = TAGGED_CODES;
  }

  peekCode() {
    return this.byteBuffer.get(this.byteBuffer.position());
  }

  // readArray reads fixed-length lists; an untyped one is tagged as the
  // ArrayList a Java reader would make of it, marked untyped.
  readArray(withType) {
    const code = this.byteBuffer.get();
    let type = '';
    let length;
    if (code === 0x56) {
      type = this.readType();
      length = this.readInt();
    } else if (code === 0x58) {
      length = this.readInt();
    } else if (code >= 0x78 && code <= 0x7f) {
      length = code - 0x78;
    } else if (code >= 0x70 && code <= 0x77) {
      type = this.readType();
      length = code - 0x70;
    } else {
      this.throwError('readArray', code);
    }
    const result = listNode(type);
    this._addRef(result);
    for (let i = 0; i < length; i++) {
      result.$.push(this.read(withType));
    }
    return result;
  }

  readVarList(withType) {
    const code = this.byteBuffer.get();
    const result = listNode(code === 0x55 ? this.readType() : '');
    this._addRef(result);
    while (this.peekCode() !== 0x5a) {
      result.$.push(this.read(withType));
    }
    this.byteBuffer.skip(1);
    return result;
  }

  readHashMap(withType) {
    this.byteBuffer.get();
    const result = mapNode('');
    this._addRef(result);
    this._readMap(result, withType);
    return result;
  }

  readMap(withType) {
    this.byteBuffer.get();
    const result = mapNode(this.readType());
    this._addRef(result);
    this._readMap(result, withType);
    return result;
  }

  // _readMap keeps every entry with its tagged key, in order.
  _readMap(node, withType) {
    while (this.peekCode() !== 0x5a) {
      const key = this.read(withType);
      node.$.push([ key, this.read(withType) ]);
    }
    this.byteBuffer.skip(1);
    return node;
  }
}

for (const [ base, [ cls, tagged ] ] of Object.entries(SCALARS)) {
  TaggedDecoder.prototype[tagged] = function() {
    const v = this[base](false);
    return { $class: cls, $: v };
  };
}

function listNode(type) {
  const node = { $class: type || 'java.util.ArrayList', $: [] };
  if (!type) {
    node[UNTYPED] = true;
  }
  return node;
}

// A map node holds [key, value] pairs: keys of any hessian kind survive.
function mapNode(type) {
  const node = { $class: type || 'java.util.HashMap', $: [], isMap: true };
  if (!type) {
    node[UNTYPED] = true;
  }
  return node;
}

function isUntyped(node) {
  return Boolean(node && node[UNTYPED]);
}

// decodeRequest reads a request body: the dubbo version, service path and
// version, method, parameter descriptor, arguments and attachments.
function decodeRequest(body) {
  const d = new TaggedDecoder(body);
  const dubboVersion = d.readString();
  const path = d.readString();
  const version = d.readString();
  const method = d.readString();
  const desc = d.readString();
  const paramTypes = desc2classArray(desc);
  const args = paramTypes.map(() => d.read(true));
  const attachments = d.byteBuffer.position() < body.length ? d.read(true) : null;
  return { dubboVersion, path, version, method, desc, paramTypes, args, attachments };
}

// decodeEvent reads an event body (null for a heartbeat, "R" for READONLY).
function decodeEvent(body) {
  if (body.length === 0) {
    return null;
  }
  return new TaggedDecoder(body).read(false);
}

// Response body kinds as dubbo defines them.
const RESPONSE_WITH_EXCEPTION = 0;
const RESPONSE_VALUE = 1;
const RESPONSE_NULL_VALUE = 2;
const WITH_ATTACHMENTS = 3; // added to each kind above

const encoder = new hessian.EncoderV2({ size: 64 * 1024 });

// encodeResult writes an OK response body. kind is 'value', 'null' or
// 'exception'; value is a hessian.js value tree; attachments (a plain
// string map) are written only when the consumer's protocol version takes
// them.
function encodeResult(kind, value, attachments) {
  encoder.reset();
  let flag = { value: RESPONSE_VALUE, null: RESPONSE_NULL_VALUE, exception: RESPONSE_WITH_EXCEPTION }[kind];
  if (attachments) {
    flag += WITH_ATTACHMENTS;
  }
  encoder.writeInt(flag);
  if (kind !== 'null') {
    encoder.write(value);
  }
  if (attachments) {
    encoder.write({ $class: 'java.util.HashMap', $: attachments });
  }
  return Buffer.from(encoder.get());
}

// encodeString writes a lone string: the error message of a response whose
// status is not OK, or an event's data.
function encodeString(s) {
  encoder.reset();
  encoder.writeString(s);
  return Buffer.from(encoder.get());
}

function encodeNull() {
  encoder.reset();
  encoder.writeNull();
  return Buffer.from(encoder.get());
}

module.exports = {
  TaggedDecoder,
  decodeRequest,
  decodeEvent,
  encodeResult,
  encodeString,
  encodeNull,
  isUntyped,
};

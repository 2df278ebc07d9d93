'use strict';

// The dubbo 2.x exchange framing: a 16-byte header before every body.
//
//   0-1  magic 0xdabb
//   2    flag: 0x80 request, 0x40 two-way, 0x20 event, low 5 bits the
//        serialization id (2: hessian2)
//   3    status (responses only)
//   4-11 request id
//   12-15 body length
//
// dubbo-remoting's decoder decodes every body itself, untyped, as soon as it
// has framed it; a provider that must see the hessian classes of what it
// received needs the raw body, so the framing is done here and the bodies go
// to hessian.js with type information kept (see codec.js).

const HEADER_LENGTH = 16;
const MAGIC_HIGH = 0xda;
const MAGIC_LOW = 0xbb;
const FLAG_REQUEST = 0x80;
const FLAG_TWOWAY = 0x40;
const FLAG_EVENT = 0x20;
const SERIALIZATION_MASK = 0x1f;
const HESSIAN2 = 2;

// parseHeader reads the 16 header bytes at the start of buf.
function parseHeader(buf) {
  const flag = buf[2];
  return {
    magicOK: buf[0] === MAGIC_HIGH && buf[1] === MAGIC_LOW,
    isRequest: (flag & FLAG_REQUEST) !== 0,
    twoWay: (flag & FLAG_TWOWAY) !== 0,
    event: (flag & FLAG_EVENT) !== 0,
    serialization: flag & SERIALIZATION_MASK,
    status: buf[3],
    // The id is echoed back byte for byte: no 64-bit arithmetic needed.
    id: Buffer.from(buf.subarray(4, 12)),
    bodyLength: buf.readInt32BE(12),
  };
}

// responseFrame builds a response: header and body in one buffer.
function responseFrame(id, status, body, event) {
  const head = Buffer.alloc(HEADER_LENGTH);
  head[0] = MAGIC_HIGH;
  head[1] = MAGIC_LOW;
  head[2] = HESSIAN2 | (event ? FLAG_EVENT : 0);
  head[3] = status;
  id.copy(head, 4);
  head.writeInt32BE(body.length, 12);
  return Buffer.concat([ head, body ]);
}

// eventRequestFrame builds a one-way event request (the READONLY event a
// provider sends before it closes).
function eventRequestFrame(id, body) {
  const head = Buffer.alloc(HEADER_LENGTH);
  head[0] = MAGIC_HIGH;
  head[1] = MAGIC_LOW;
  head[2] = HESSIAN2 | FLAG_REQUEST | FLAG_EVENT;
  head.writeBigInt64BE(BigInt(id), 4);
  head.writeInt32BE(body.length, 12);
  return Buffer.concat([ head, body ]);
}

// FrameReader cuts a byte stream into frames. Bodies longer than maxBody are
// skipped as they arrive, never buffered: onOversize gets their header.
class FrameReader {
  constructor({ maxBody, onFrame, onOversize, onGarbage }) {
    this.maxBody = maxBody;
    this.onFrame = onFrame;
    this.onOversize = onOversize;
    this.onGarbage = onGarbage;
    this.chunks = [];
    this.buffered = 0;
    this.skipping = 0;
  }

  push(chunk) {
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, chunk.length);
      this.skipping -= n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    while (this.next()) { /* one frame per turn */ }
  }

  // next handles one frame if it is complete; false when more bytes are needed.
  next() {
    if (this.skipping > 0 || this.buffered < HEADER_LENGTH) {
      return false;
    }
    const head = parseHeader(this.peek(HEADER_LENGTH));
    if (!head.magicOK || head.bodyLength < 0) {
      this.onGarbage(head);
      this.chunks = [];
      this.buffered = 0;
      return false;
    }
    if (head.bodyLength > this.maxBody) {
      this.take(HEADER_LENGTH);
      const inBuffer = Math.min(this.buffered, head.bodyLength);
      this.drop(inBuffer);
      this.skipping = head.bodyLength - inBuffer;
      this.onOversize(head);
      return true;
    }
    if (this.buffered < HEADER_LENGTH + head.bodyLength) {
      return false;
    }
    this.take(HEADER_LENGTH);
    this.onFrame(head, this.take(head.bodyLength));
    return true;
  }

  peek(n) {
    if (this.chunks[0].length < n) {
      this.chunks = [ Buffer.concat(this.chunks) ];
    }
    return this.chunks[0].subarray(0, n);
  }

  take(n) {
    if (n === 0) {
      return Buffer.alloc(0);
    }
    const out = Buffer.from(this.peek(n));
    this.drop(n);
    return out;
  }

  drop(n) {
    this.buffered -= n;
    while (n > 0) {
      const first = this.chunks[0];
      if (first.length > n) {
        this.chunks[0] = first.subarray(n);
        return;
      }
      n -= first.length;
      this.chunks.shift();
    }
  }
}

module.exports = {
  HEADER_LENGTH,
  HESSIAN2,
  FrameReader,
  parseHeader,
  responseFrame,
  eventRequestFrame,
};

package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
)

const (
	readBufSize = 32 << 10
	// maxEventBody bounds what the provider may send as an event
	// (heartbeat or readonly); those bodies are a byte or two.
	maxEventBody = 64 << 10
	// maxDrain: a too-large answer up to this size is read past so the
	// connection's other calls go on; a bigger one closes the connection
	// rather than hold them up reading it.
	maxDrain = 64 << 20
)

// readLoop reads frames until the connection fails; it is the
// connection's only goroutine.
func (cn *conn) readLoop() {
	br := bufio.NewReaderSize(cn.nc, readBufSize)
	codec := hessian.NewHessianCodec(br)
	for {
		if err := cn.readFrame(br, codec); err != nil {
			cn.fail(err)
			return
		}
	}
}

// readFrame reads one frame: the header with hessian's codec, then the
// body as its kind needs.
func (cn *conn) readFrame(br *bufio.Reader, codec *hessian.HessianCodec) error {
	head, err := br.Peek(hessian.HEADER_LENGTH)
	if err != nil {
		return readErr(err)
	}
	// The codec lets a frame through when one of the two magic bytes
	// matches; a stream out of step must stop here.
	if head[0] != hessian.MAGIC_HIGH || head[1] != hessian.MAGIC_LOW {
		return fmt.Errorf("the provider sent bytes that are not a dubbo frame")
	}
	var h hessian.DubboHeader
	// ReadHeader reports ErrBodyNotEnough when the body is not buffered
	// yet; the header is read all the same.
	if err := codec.ReadHeader(&h); err != nil && !errors.Is(err, hessian.ErrBodyNotEnough) {
		return fmt.Errorf("reading a frame header: %w", err)
	}
	cn.lastRead.Store(time.Now().UnixNano())
	switch {
	case h.Type&hessian.PackageRequest != 0:
		return cn.onRequest(br, &h)
	case h.Type&hessian.PackageHeartbeat != 0:
		return discard(br, h.BodyLen) // the answer to our heartbeat
	}
	return cn.onResponse(br, &h)
}

// onResponse hands the answer to its call. A body over the limit fails the
// call as soon as the header says so, and is skipped.
func (cn *conn) onResponse(br *bufio.Reader, h *hessian.DubboHeader) error {
	c := cn.take(h.ID)
	if c == nil {
		return discard(br, h.BodyLen) // its caller gave up
	}
	limit := cn.opts.MaxResponseBytes
	if c.maxResponse > 0 {
		limit = c.maxResponse
	}
	if h.BodyLen > limit {
		c.done <- reply{err: &TooLargeError{Response: true, Size: h.BodyLen, Limit: limit}}
		if h.BodyLen > maxDrain {
			return fmt.Errorf("a response of %d bytes, over %d, is not read past", h.BodyLen, maxDrain)
		}
		return discard(br, h.BodyLen)
	}
	pooled, body := getBody(h.BodyLen)
	if _, err := io.ReadFull(br, body); err != nil {
		putBody(pooled)
		err = readErr(err)
		c.done <- reply{err: &ConnectionLostError{Sent: true, Cause: err}}
		return err
	}
	c.done <- reply{status: h.ResponseStatus, body: body, pooled: pooled}
	return nil
}

// onRequest handles what the provider asks: heartbeats, answered when
// two-way, and the readonly event a provider sends as it starts shutting
// down. Anything else (callbacks) is not supported and skipped.
func (cn *conn) onRequest(br *bufio.Reader, h *hessian.DubboHeader) error {
	if h.BodyLen > maxEventBody {
		return fmt.Errorf("the provider sent a request of %d bytes", h.BodyLen)
	}
	body := make([]byte, h.BodyLen)
	if _, err := io.ReadFull(br, body); err != nil {
		return readErr(err)
	}
	if h.Type&hessian.PackageHeartbeat == 0 {
		cn.log.Debug("dubbo provider sent a request that is not an event; skipped", "addr", cn.pool.addr)
		return nil
	}
	if isReadonlyEvent(body) {
		cn.markClosing("readonly event")
	}
	if h.Type&hessian.PackageRequest_TwoWay != 0 {
		frame, err := encodeHeartbeatReply(h.SerialID, h.ID)
		if err != nil {
			return fmt.Errorf("encoding a heartbeat answer: %w", err)
		}
		cn.send(nil, frame)
	}
	return nil
}

// readonlyEvent is the body of Dubbo's READONLY_EVENT ("R"); a heartbeat's
// body is null.
const readonlyEvent = "R"

func isReadonlyEvent(body []byte) bool {
	v, err := hessian.NewDecoder(body).Decode()
	return err == nil && v == readonlyEvent
}

func discard(br *bufio.Reader, n int) error {
	_, err := br.Discard(n)
	return readErr(err)
}

// readErr names the end of the stream as the provider closing it.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the provider closed the connection")
	}
	return err
}

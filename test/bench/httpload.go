package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// httpReq is one pre-encoded HTTP/1.1 request and the status its answer
// must have. net/http's client costs ~20 µs per request, more than some
// paths measured here; this one writes fixed bytes on a keep-alive
// connection and reads the status line, the headers and the body
// (Content-Length or chunked), nothing else.
type httpReq struct {
	addr   string
	raw    []byte
	status int
}

func newHTTPReq(addr, method, path, contentType string, body []byte, status int) httpReq {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", method, path, addr, contentType, len(body))
	b.Write(body)
	return httpReq{addr: addr, raw: b.Bytes(), status: status}
}

// worker opens one keep-alive connection for one load worker.
func (q httpReq) worker(int) (func() error, func(), error) {
	conn, err := net.DialTimeout("tcp", q.addr, 5*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", q.addr, err)
	}
	hc := &httpConn{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), req: q}
	return hc.do, func() { conn.Close() }, nil
}

type httpConn struct {
	conn net.Conn
	r    *bufio.Reader
	req  httpReq
	dead bool
}

var (
	crlf          = []byte("\r\n")
	contentLength = []byte("content-length:")
	chunkedTE     = []byte("transfer-encoding: chunked")
)

// chunked is readHead's length for a chunked body.
const chunked = -2

// do sends the request and reads its answer; a connection that failed
// once stays failed (the server closed it or answered garbage).
func (c *httpConn) do() error {
	if c.dead {
		return fmt.Errorf("connection closed after an earlier error")
	}
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(c.req.raw); err != nil {
		c.dead = true
		return fmt.Errorf("writing the request: %w", err)
	}
	status, n, err := c.readHead()
	if err != nil {
		c.dead = true
		return err
	}
	if err := c.skipBody(n); err != nil {
		c.dead = true
		return fmt.Errorf("reading the body: %w", err)
	}
	if status != c.req.status {
		return fmt.Errorf("status %d, want %d", status, c.req.status)
	}
	return nil
}

// readHead reads the status line and headers and returns the status and
// the body's length.
func (c *httpConn) readHead() (status, length int, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("reading the status line: %w", err)
	}
	// "HTTP/1.1 201 Created\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, 0, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, fmt.Errorf("bad status line %q", line)
	}
	length = -1
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, 0, fmt.Errorf("reading headers: %w", err)
		}
		if bytes.Equal(h, crlf) {
			break
		}
		if len(h) >= len(chunkedTE) && bytes.EqualFold(h[:len(chunkedTE)], chunkedTE) {
			length = chunked
			continue
		}
		if len(h) > len(contentLength) && bytes.EqualFold(h[:len(contentLength)], contentLength) {
			length, err = strconv.Atoi(string(bytes.TrimSpace(h[len(contentLength):])))
			if err != nil {
				return 0, 0, fmt.Errorf("bad Content-Length %q", h)
			}
		}
	}
	if length == -1 {
		return 0, 0, fmt.Errorf("status %d without Content-Length or chunked body: %w", status, io.ErrUnexpectedEOF)
	}
	return status, length, nil
}

// skipBody reads n bytes, or a chunked body to its end.
func (c *httpConn) skipBody(n int) error {
	if n != chunked {
		_, err := c.r.Discard(n)
		return err
	}
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size := bytes.TrimSpace(line)
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i] // chunk extensions
		}
		k, err := strconv.ParseInt(string(size), 16, 32)
		if err != nil || k < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if k == 0 {
			break
		}
		if _, err := c.r.Discard(int(k) + 2); err != nil { // the chunk and its CRLF
			return err
		}
	}
	for { // trailers, up to the blank line
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if bytes.Equal(line, crlf) {
			return nil
		}
	}
}

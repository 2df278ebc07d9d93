package wire

import (
	"fmt"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// serialHessian2 is the Dubbo header's serialization id of hessian2.
const serialHessian2 byte = 2

// Invocation is one generic call: what a Java consumer's
// GenericService.$invoke(method, parameterTypes, args) sends.
type Invocation struct {
	Service string   // the Java interface, e.g. com.example.UserService
	Version string   // "" for none
	Group   string   // "" for none
	Method  string   // the real method name
	Types   []string // the Java parameter type names, one per argument
	Args    []any    // the hessian values of the arguments
	// Attachments go with the request. The names the protocol itself
	// sets (path, interface, version, group, timeout, generic, dubbo,
	// closing) are dropped.
	Attachments map[string]string
	// MaxResponseBytes bounds this call's answer; 0 takes the client's
	// Options.MaxResponseBytes.
	MaxResponseBytes int
}

// serviceKey names the service as dubbo-go's provider does in its
// answers: group/interface:version, with version 0.0.0 left out.
func (inv *Invocation) serviceKey() string {
	k := inv.Service
	if inv.Group != "" {
		k = inv.Group + "/" + k
	}
	if inv.Version != "" && inv.Version != "0.0.0" {
		k += ":" + inv.Version
	}
	return k
}

func (inv *Invocation) notFound(msg string) error {
	return &ServiceNotFoundError{Service: inv.Service, Version: inv.Version, Group: inv.Group, Message: msg}
}

// reservedAttachments are the names the protocol sets itself; a caller's
// value is dropped. "closing" among them: a dubbo-go provider returns the
// request's attachments in its answer, and a closing=true coming back
// would mark the provider as shutting down.
var reservedAttachments = map[string]bool{
	"path": true, "interface": true, "version": true, "group": true, "timeout": true,
	"generic": true, "dubbo": true, closingAttachment: true,
}

// encodeRequest packs the two-way request frame (header and body) into a
// frame from the pool, which the connection returns once it is written.
// timeout is what the provider is told it has.
func encodeRequest(inv *Invocation, id int64, timeout time.Duration) (*[]byte, error) {
	if len(inv.Types) != len(inv.Args) {
		return nil, fmt.Errorf("%w: %d parameter types for %d arguments", ErrBadRequest, len(inv.Types), len(inv.Args))
	}
	fp := getFrame()
	b := append((*fp)[:0], make([]byte, hessian.HEADER_LENGTH)...)
	b, err := appendRequest(b, inv, timeout)
	*fp = b
	if err != nil {
		putFrame(fp)
		return nil, fmt.Errorf("%w: encoding %s.%s: %v", ErrBadRequest, inv.Service, inv.Method, err)
	}
	// The protocol's limit is on the whole frame, as hessian's codec
	// enforces it.
	if len(b) > hessian.DEFAULT_LEN {
		putFrame(fp)
		return nil, &TooLargeError{Size: len(b) - hessian.HEADER_LENGTH, Limit: maxCodecBody}
	}
	putHeader(b, hessian.FLAG_REQUEST|hessian.FLAG_TWOWAY, id, len(b)-hessian.HEADER_LENGTH)
	return fp, nil
}

// maxCodecBody is the largest body hessian's codec packs (DEFAULT_LEN is
// the whole frame).
const maxCodecBody = hessian.DEFAULT_LEN - hessian.HEADER_LENGTH

// encodeHeartbeat packs a two-way heartbeat request.
func encodeHeartbeat(id int64) ([]byte, error) {
	hdr := hessian.DubboHeader{SerialID: serialHessian2, Type: hessian.PackageHeartbeat, ID: id}
	return hessian.NewHessianCodec(nil).Write(hessian.Service{}, hdr, hessian.NewRequest([]any{}, nil))
}

// encodeHeartbeatReply answers the provider's heartbeat request id.
func encodeHeartbeatReply(serial byte, id int64) ([]byte, error) {
	hdr := hessian.DubboHeader{SerialID: serial, Type: hessian.PackageHeartbeat, ID: id, ResponseStatus: hessian.Response_OK}
	return hessian.NewHessianCodec(nil).Write(hessian.Service{}, hdr, nil)
}

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

// encodeRequest packs the two-way request frame (header and body) with
// hessian's codec. timeout is what the provider is told it has.
func encodeRequest(inv *Invocation, id int64, timeout time.Duration) ([]byte, error) {
	if len(inv.Types) != len(inv.Args) {
		return nil, fmt.Errorf("%w: %d parameter types for %d arguments", ErrBadRequest, len(inv.Types), len(inv.Args))
	}
	args := make([]hessian.Object, len(inv.Args))
	for i, a := range inv.Args {
		args[i] = a
	}
	types := inv.Types
	if types == nil {
		types = []string{} // a null list would reach the provider as nil
	}
	// The codec adds path, version, group, interface and timeout to this
	// map, so it must be a fresh one, never the caller's.
	att := make(map[string]string, len(inv.Attachments)+7)
	for k, v := range inv.Attachments {
		if !reservedAttachments[k] {
			att[k] = v
		}
	}
	att["generic"] = "true"
	svc := hessian.Service{
		Path: inv.Service, Interface: inv.Service, Group: inv.Group, Version: inv.Version,
		Method: "$invoke", Timeout: timeout,
	}
	hdr := hessian.DubboHeader{SerialID: serialHessian2, Type: hessian.PackageRequest_TwoWay, ID: id}
	params := []any{inv.Method, types, args}
	frame, err := hessian.NewHessianCodec(nil).Write(svc, hdr, hessian.NewRequest(params, att))
	if err != nil {
		// The codec refuses frames over the protocol's 8 MiB payload with
		// an error of text only: measure instead of reading it.
		if n := encodedSize(params); n > maxCodecBody {
			return nil, &TooLargeError{Size: n, Limit: maxCodecBody}
		}
		return nil, fmt.Errorf("%w: encoding %s.%s: %v", ErrBadRequest, inv.Service, inv.Method, err)
	}
	return frame, nil
}

// maxCodecBody is the largest body hessian's codec packs (DEFAULT_LEN is
// the whole frame).
const maxCodecBody = hessian.DEFAULT_LEN - hessian.HEADER_LENGTH

// encodedSize is about how many bytes params take in hessian; used only
// after the codec failed, to tell "too large" from other failures.
func encodedSize(params []any) int {
	e := hessian.NewEncoder()
	for _, p := range params {
		if err := e.Encode(p); err != nil {
			return 0
		}
	}
	return len(e.Buffer())
}

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

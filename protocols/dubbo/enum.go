package dubbo

import (
	"errors"
	"reflect"

	hessian "github.com/apache/dubbo-go-hessian2"
)

// EnumConstant is a constant of a Java enum as hessian carries it: an
// object of the enum's class whose one field, name, is the constant's
// name. That is what a Java consumer sends, and what both a Java provider's
// hessian and a dubbo-go provider's registered enum decode; a bare string
// is refused by either once the enum sits inside a POJO.
type EnumConstant struct {
	Class string
	Name  string
}

// enumMarker is the class name under which hessian finds the serializer
// of every EnumConstant. hessian keys its registries by Go type or by a
// fixed class name; one Go type standing for any enum class needs a name
// of its own, and a serializer registered once, at init, before any
// encoding can read the map concurrently.
const enumMarker = "protogate.internal.EnumConstant"

// JavaClassName routes hessian to enumSerializer; the class that goes on
// the wire is c.Class.
func (EnumConstant) JavaClassName() string { return enumMarker }

type enumSerializer struct{}

func (enumSerializer) EncObject(e *hessian.Encoder, v hessian.POJO) error {
	var c EnumConstant
	switch x := v.(type) {
	case *EnumConstant:
		c = *x
	case EnumConstant:
		c = x
	default:
		return errors.New("enum serializer given a value that is not an enum constant")
	}
	return e.EncodeMapAsClass(c.Class, map[string]any{"name": c.Name})
}

// DecObject is never called for a real class: a provider naming the marker
// class gets its answer refused, not decoded into something unplanned.
func (enumSerializer) DecObject(*hessian.Decoder, reflect.Type, *hessian.ClassInfo) (any, error) {
	return nil, errors.New("unexpected class " + enumMarker + " in an answer")
}

func init() { hessian.SetSerializer(enumMarker, enumSerializer{}) }

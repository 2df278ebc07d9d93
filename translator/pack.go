package translator

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/protogate/protogate/config"
)

// validator is what every generated Envoy message offers. ValidateAll does
// not look inside Any, so each typed config is validated before packing.
type validator interface {
	ValidateAll() error
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// pack validates a typed config against Envoy's own rules and packs it.
// A failure is recorded against the mapping field that produced it.
func (b *build) pack(msg proto.Message, path, what string) *anypb.Any {
	if v, ok := msg.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			b.fail(path, "%s: Envoy would reject this config: %v", what, err)
			return nil
		}
	}
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, msg, deterministic); err != nil {
		b.fail(path, "%s: %v", what, err)
		return nil
	}
	return a
}

// packNested validates and packs a config that sits inside another
// filter's config; the plugin's caller reports an error with its path.
func packNested(msg proto.Message) (*anypb.Any, error) {
	if v, ok := msg.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			return nil, fmt.Errorf("Envoy would reject this config: %w", err)
		}
	}
	a := &anypb.Any{}
	return a, anypb.MarshalFrom(a, msg, deterministic)
}

// mustAny packs a fixed message the translator builds itself (never from
// mapping values that could fail validation).
func mustAny(msg proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, msg, deterministic); err != nil {
		panic(err)
	}
	return a
}

// eachFilter asks every plugin of a chain for its config through get,
// validates and packs what it returns, and hands it to add in chain order.
// A plugin's problem is recorded at path.KEY.
func (b *build) eachFilter(chain []Plugin, path string, get func(Plugin) (proto.Message, error), add func(Plugin, *anypb.Any)) {
	for _, p := range chain {
		msg, err := get(p)
		fp := path + "." + p.Key()
		if err != nil {
			b.fail(fp, "%s: %v", p.Name(), err)
			continue
		}
		if msg == nil {
			continue
		}
		if a := b.pack(msg, fp, p.Name()); a != nil {
			add(p, a)
		}
	}
}

// fail records a translation problem at a mapping field path.
func (b *build) fail(path, format string, args ...any) {
	b.problems = append(b.problems, config.Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

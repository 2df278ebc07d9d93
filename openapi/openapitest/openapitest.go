// Package openapitest checks OpenAPI documents, and requests against them,
// with maintained validators, for the tests of the packages that make and
// serve the documents: pb33f's libopenapi-validator (the document against
// the OpenAPI 3.1 specification's schema, and HTTP requests against the
// document), and every JSON Schema in it compiled as draft 2020-12, the
// dialect of OpenAPI 3.1, by santhosh-tekuri/jsonschema.
package openapitest

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi/datamodel"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Checker holds a document that passed validation.
type Checker struct {
	v validator.Validator
}

// New validates a document and returns a checker for requests against it.
func New(doc []byte) (*Checker, error) {
	conf := datamodel.NewDocumentConfiguration()
	// Problems come back as errors; the library's log would repeat them.
	conf.Logger = slog.New(slog.DiscardHandler)
	d, err := libopenapi.NewDocumentWithConfiguration(doc, conf)
	if err != nil {
		return nil, fmt.Errorf("reading the document: %w", err)
	}
	if v := d.GetVersion(); v != "3.1.0" {
		return nil, fmt.Errorf("the document is OpenAPI %q, want 3.1.0", v)
	}
	// Formats (date-time) and base64 are assertions, as the bridge
	// enforces them.
	v, errs := validator.NewValidator(d, config.WithFormatAssertions(), config.WithContentAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("building the document's model: %w", errors.Join(errs...))
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		msgs := make([]string, len(verrs))
		for i, e := range verrs {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("the document does not validate: %s", strings.Join(msgs, "; "))
	}
	if err := compileSchemas(doc); err != nil {
		return nil, err
	}
	return &Checker{v: v}, nil
}

// Request says why the document does not allow a request (nil: it does).
// The request's body is read and put back.
func (c *Checker) Request(r *http.Request) error {
	if ok, errs := c.v.ValidateHttpRequestSync(r); !ok {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// Response says why the document does not allow a response to a request
// (nil: it does): its status, headers and body.
func (c *Checker) Response(r *http.Request, resp *http.Response) error {
	if ok, errs := c.v.ValidateHttpResponse(r, resp); !ok {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// compileSchemas compiles every schema of the document (components, and
// those of parameters, bodies, responses and headers), so a pattern that is
// no regular expression or a keyword of the wrong type is caught.
func compileSchemas(doc []byte) error {
	root, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("reading the document as JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	const url = "urn:protogate:openapi.json"
	if err := c.AddResource(url, root); err != nil {
		return fmt.Errorf("adding the document: %w", err)
	}
	var ptrs []string
	collect(root, "", false, &ptrs)
	sort.Strings(ptrs)
	for _, p := range ptrs {
		if _, err := c.Compile(url + "#" + p); err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
	}
	if len(ptrs) == 0 {
		return errors.New("the document holds no schema at all")
	}
	return nil
}

// collect finds the JSON pointers of the schemas in an OpenAPI document:
// the values of "schema" keys, and the entries of components/schemas. It
// does not descend into schemas (their subschemas compile with them).
func collect(v any, ptr string, inSchemas bool, out *[]string) {
	obj, ok := v.(map[string]any)
	if !ok {
		if list, ok := v.([]any); ok {
			for i, it := range list {
				collect(it, fmt.Sprintf("%s/%d", ptr, i), false, out)
			}
		}
		return
	}
	for k, val := range obj {
		p := ptr + "/" + escape(k)
		switch {
		case inSchemas || k == "schema":
			*out = append(*out, p)
		case ptr == "/components" && k == "schemas":
			collect(val, p, true, out)
		default:
			collect(val, p, false, out)
		}
	}
}

func escape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

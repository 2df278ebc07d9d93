// Package config holds the protocol-mapping file model: loading it with viper
// from YAML, JSON or TOML (one file or a directory merged in name order),
// strict decoding, defaults, validation with field paths, and the JSON Schema
// and reference docs generated from the model itself.
//
// Struct tags are the single source of truth for every field:
//
//	json:"name"        the key in the file
//	doc:"..."          the description (docs and schema)
//	default:"..."      applied when the key is absent
//	required:"true"    the key must be present and non-empty
//	enum:"a,b"         allowed values
//	min:"..." max:"..." range for numbers, durations and sizes
//	format:"..."       name | listen | endpoint | url | header (checked by validation)
//	example:"..."      shown in docs/config.md
//	env:"true"         may be overridden by a PROTOGATE_ environment variable
package config

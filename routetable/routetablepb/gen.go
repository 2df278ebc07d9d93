// Package routetablepb is the xDS resource that carries a route table.
// Regenerate routetable.pb.go after changing routetable.proto (Debian's
// protobuf-compiler, and protoc-gen-go at go.mod's protobuf version):
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go generate ./routetable/routetablepb
package routetablepb

//go:generate protoc --go_out=. --go_opt=paths=source_relative routetable.proto

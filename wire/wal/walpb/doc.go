// Package walpb holds the protocol buffer envelopes in which Morax nodes
// forward WAL HTTP requests to the owner of a log's partition over
// protoactor-go remote (see forward.proto and wire/wal/forward.go).
//
// forward.pb.go is generated; edit forward.proto and regenerate with
// protoc 3.21+ and protoc-gen-go v1.36.12 (the version of
// google.golang.org/protobuf in go.mod) on PATH:
//
//	GOBIN=/tmp/protobin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	PATH=/tmp/protobin:$PATH go generate ./wire/wal/walpb
package walpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative forward.proto

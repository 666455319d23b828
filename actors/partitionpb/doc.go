// Package partitionpb holds the protocol buffer messages in which Morax
// nodes send partition requests (append, fetch, list offsets, trim,
// describe) to the node that owns the partition, and its replies, over
// protoactor-go remote (see partition.proto and actors/route.go).
//
// partition.pb.go is generated; edit partition.proto and regenerate with
// protoc 3.21+ and protoc-gen-go v1.36.12 (the version of
// google.golang.org/protobuf in go.mod) on PATH:
//
//	GOBIN=/tmp/protobin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	PATH=/tmp/protobin:$PATH go generate ./actors/partitionpb
package partitionpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative partition.proto

package meta

import (
	"encoding/hex"
	"fmt"
)

// String formats the id as a canonical UUID.
func (id TopicID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// PartitionResource is the lease resource name of a partition.
func PartitionResource(id TopicID, partition int32) string {
	return fmt.Sprintf("%s%d", TopicResourcePrefix(id), partition)
}

// TopicResourcePrefix is the prefix shared by the lease resource names of
// every partition of a topic, so the leases of one topic can be listed (see
// Store.Leases) without knowing its partition count.
func TopicResourcePrefix(id TopicID) string {
	return "p/" + id.String() + "/"
}

// SlotResource is the lease resource name of a consumer-group coordinator slot.
func SlotResource(slot int) string {
	return fmt.Sprintf("g/%d", slot)
}

package meta

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
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

// LeaseOwner is the owner string a node's incarnation writes into leases:
// the node id and a value new at every process start. A restarted node thus
// never inherits its previous incarnation's leases (which may belong to a
// process that is paused, not dead): it waits for them to expire like any
// other node, and takes them with a new epoch.
func LeaseOwner(node, incarnation string) string { return node + "@" + incarnation }

// LeaseNode is the node id in a lease owner string ("" for a vacant lease).
// Owners written without an incarnation are node ids themselves.
func LeaseNode(owner string) string {
	node, _, _ := strings.Cut(owner, "@")
	return node
}

// ParsePartitionResource is the partition a lease resource name names
// (PartitionResource), or false for any other resource.
func ParsePartitionResource(resource string) (PartitionKey, bool) {
	rest, ok := strings.CutPrefix(resource, "p/")
	if !ok {
		return PartitionKey{}, false
	}
	idText, partText, ok := strings.Cut(rest, "/")
	if !ok || len(idText) != 36 {
		return PartitionKey{}, false
	}
	var id TopicID
	hexText := strings.ReplaceAll(idText, "-", "")
	if len(hexText) != 32 {
		return PartitionKey{}, false
	}
	if _, err := hex.Decode(id[:], []byte(hexText)); err != nil {
		return PartitionKey{}, false
	}
	p, err := strconv.ParseInt(partText, 10, 32)
	if err != nil || p < 0 {
		return PartitionKey{}, false
	}
	return PartitionKey{TopicID: id, Partition: int32(p)}, true
}

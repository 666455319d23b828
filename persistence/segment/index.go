package segment

// IndexEntry maps the base offset of a record batch to its byte position in
// a segment object. A segment's sparse index holds one entry every few KiB,
// so a reader can start a ranged GET near the offset it wants.
type IndexEntry struct {
	Offset   int64
	Position int64
}

package meta

import "testing"

func TestParsePartitionResource(t *testing.T) {
	id := TopicID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe}
	cases := []struct {
		name     string
		resource string
		want     PartitionKey
		ok       bool
	}{
		{"partition", PartitionResource(id, 7), PartitionKey{TopicID: id, Partition: 7}, true},
		{"partition zero", PartitionResource(id, 0), PartitionKey{TopicID: id, Partition: 0}, true},
		{"slot", SlotResource(3), PartitionKey{}, false},
		{"no partition", TopicResourcePrefix(id), PartitionKey{}, false},
		{"negative", TopicResourcePrefix(id) + "-1", PartitionKey{}, false},
		{"short id", "p/0123/1", PartitionKey{}, false},
		{"not hex", "p/zz234567-89ab-cdef-1032-547698badcfe/1", PartitionKey{}, false},
		{"empty", "", PartitionKey{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ParsePartitionResource(c.resource)
			if ok != c.ok || got != c.want {
				t.Fatalf("ParsePartitionResource(%q) = %v, %v; want %v, %v", c.resource, got, ok, c.want, c.ok)
			}
		})
	}
}

func FuzzParsePartitionResource(f *testing.F) {
	f.Add("p/01234567-89ab-cdef-1032-547698badcfe/3")
	f.Add("g/1")
	f.Fuzz(func(t *testing.T, s string) {
		key, ok := ParsePartitionResource(s)
		if !ok {
			return
		}
		again, ok := ParsePartitionResource(PartitionResource(key.TopicID, key.Partition))
		if !ok || again != key {
			t.Fatalf("%q parsed to %v, whose canonical name parses to %v, %v", s, key, again, ok)
		}
	})
}

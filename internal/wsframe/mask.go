package wsframe

import "encoding/binary"

// maskBytes applies the 4-byte masking key to b in place (RFC 6455 5.3),
// eight bytes at a time where it can: client frames are all masked, so
// this runs over every byte a client sends.
func maskBytes(b, key []byte) {
	if len(b) >= 8 {
		k32 := uint64(binary.LittleEndian.Uint32(key))
		k64 := k32 | k32<<32
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
			b = b[8:]
		}
	}
	// Whole words keep the key's phase: the tail starts at key[0].
	for i := range b {
		b[i] ^= key[i&3]
	}
}

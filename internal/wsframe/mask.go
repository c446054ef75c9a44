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

// AppendClientFrame appends one frame as a client sends it (masked with
// key) to dst: what the server's tests and load generators write. A zero
// key, which RFC 6455 allows, leaves the payload as it is, with no pass
// over it.
func AppendClientFrame(dst []byte, fin bool, op Opcode, payload []byte, key [4]byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	dst = append(dst, b0)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n < 1<<16:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	if key != ([4]byte{}) {
		maskBytes(dst[start:], key[:])
	}
	return dst
}

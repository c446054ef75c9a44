// Package kvstore implements the key-value store of functions (ctx.kv):
// in memory for one node, in Redis for a cluster.
package kvstore

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// checkKey refuses keys the store does not take.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("key is empty")
	}
	if len(key) > fnrt.MaxKVKeyBytes {
		return fmt.Errorf("%w: key is %d bytes, the limit is %d", fnrt.ErrKVLimit, len(key), fnrt.MaxKVKeyBytes)
	}
	return nil
}

// checkValue refuses values too large or not JSON.
func checkValue(v json.RawMessage) error {
	if len(v) > fnrt.MaxKVValueBytes {
		return fmt.Errorf("%w: value is %d bytes, the limit is %d", fnrt.ErrKVLimit, len(v), fnrt.MaxKVValueBytes)
	}
	if !json.Valid(v) {
		return fmt.Errorf("value is not JSON")
	}
	return nil
}

// addInt adds by to the stored integer raw (nil: 0) within ±MaxKVInt.
func addInt(raw []byte, by int64) (int64, error) {
	var n int64
	if raw != nil {
		var err error
		if n, err = strconv.ParseInt(string(raw), 10, 64); err != nil {
			return 0, fmt.Errorf("%w: %.40s", fnrt.ErrKVNotInteger, raw)
		}
	}
	if by > fnrt.MaxKVInt || by < -fnrt.MaxKVInt {
		return 0, fmt.Errorf("increment %d is outside ±2^53", by)
	}
	n += by
	if n > fnrt.MaxKVInt || n < -fnrt.MaxKVInt {
		return 0, fmt.Errorf("%w: the result %d is outside ±2^53", fnrt.ErrKVLimit, n)
	}
	return n, nil
}

func keysError(n int) error {
	return fmt.Errorf("%w: the scope would hold %d keys, the limit is %d", fnrt.ErrKVLimit, n, fnrt.MaxKVKeys)
}

func bytesError(n int64) error {
	return fmt.Errorf("%w: the scope would hold %d bytes, the limit is %d", fnrt.ErrKVLimit, n, fnrt.MaxKVScopeBytes)
}

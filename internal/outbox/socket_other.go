//go:build !unix

package outbox

import "syscall"

// writeFD is unix only; elsewhere every write waits for the drain goroutine.
func writeFD(uintptr, []byte) (int, error) { return 0, syscall.EAGAIN }

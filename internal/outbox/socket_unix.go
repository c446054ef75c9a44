//go:build unix

package outbox

import "syscall"

func writeFD(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }

//go:build !linux

package readpoll

import (
	"errors"
	"syscall"
)

var errUnsupported = errors.New("readpoll: only on Linux")

// Supported reports whether Watch can work here: not on this system.
func Supported() bool { return false }

// Watch fails on this system: sockets are read by a goroutine each.
func Watch(syscall.RawConn, Waker) (Token, error) { return 0, errUnsupported }

// Unwatch does nothing on this system.
func Unwatch(syscall.RawConn, Token) {}

// Watched reports 0 on this system.
func Watched() int { return 0 }

// Package readpoll tells connections that bytes have arrived, from one
// epoll set for the whole process, so an idle connection needs no goroutine
// blocked in a read: a server registers a socket with Watch and runs its
// reader only when told (Waker.Wake), then reads until the socket has
// nothing more.
//
// Registrations are edge-triggered: a Wake comes when bytes arrive (or the
// peer hangs up) after the reader last found the socket empty, so a reader
// must read until a read comes back EAGAIN before it waits for the next
// one. Wake may come while the reader still runs; the reader's owner keeps
// the two apart (see the server's pollConn).
package readpoll

// Waker is told that its socket may have bytes to read or has hung up. It
// is called from the poller's goroutine and must not block.
type Waker interface {
	Wake()
}

// Token names one registration (Watch, Unwatch).
type Token uint64

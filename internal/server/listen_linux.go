package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// listenTCP listens on addr. Go sets TCP keep-alive on every accepted
// socket with four setsockopt calls (on, idle, interval, count): a few
// percent of the server's CPU per new connection. On Linux an accepted
// socket inherits these options from the listening socket, so they are
// set there once, to the values Go would set, and Go's per-connection
// calls are turned off. Each connection ends up configured as before
// (TestListenerKeepAliveInherited).
func listenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = setKeepAlive(int(fd)) }); err != nil {
				return fmt.Errorf("listener keep-alive: %w", err)
			}
			return serr
		},
	}
	return lc.Listen(context.Background(), "tcp", addr)
}

// Go's defaults for accepted connections (net.ListenConfig.KeepAlive 0).
const (
	keepAliveIdle     = 15 * time.Second
	keepAliveInterval = 15 * time.Second
	keepAliveCount    = 9
)

func setKeepAlive(fd int) error {
	return errors.Join(
		wrapSockopt("SO_KEEPALIVE", syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)),
		wrapSockopt("TCP_KEEPIDLE", syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(keepAliveIdle/time.Second))),
		wrapSockopt("TCP_KEEPINTVL", syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(keepAliveInterval/time.Second))),
		wrapSockopt("TCP_KEEPCNT", syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount)),
	)
}

func wrapSockopt(name string, err error) error {
	if err != nil {
		return fmt.Errorf("listener %s: %w", name, err)
	}
	return nil
}

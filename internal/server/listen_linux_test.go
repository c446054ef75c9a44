package server

import (
	"net"
	"syscall"
	"testing"
)

// TestListenerKeepAliveInherited checks that a connection accepted by
// listenTCP has the keep-alive options a default Go listener sets on it.
func TestListenerKeepAliveInherited(t *testing.T) {
	def, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	ours, err := listenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	want := acceptedOptions(t, def)
	got := acceptedOptions(t, ours)
	if got != want {
		t.Fatalf("accepted socket options %+v, want those of a default Go listener %+v", got, want)
	}
	if !got.keepAlive || !got.noDelay {
		t.Fatalf("accepted socket options %+v: keep-alive and no-delay should be on", got)
	}
}

type sockOptions struct {
	keepAlive, noDelay     bool
	idle, interval, probes int
}

func acceptedOptions(t *testing.T, ln net.Listener) sockOptions {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var o sockOptions
	var errs []error
	get := func(fd uintptr, level, opt int) int {
		v, err := syscall.GetsockoptInt(int(fd), level, opt)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	if err := rc.Control(func(fd uintptr) {
		o.keepAlive = get(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) != 0
		o.noDelay = get(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY) != 0
		o.idle = get(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE)
		o.interval = get(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL)
		o.probes = get(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT)
	}); err != nil {
		t.Fatal(err)
	}
	if len(errs) > 0 {
		t.Fatalf("getsockopt: %v", errs)
	}
	return o
}

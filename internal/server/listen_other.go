//go:build !linux

package server

import "net"

// listenTCP listens on addr; Go sets keep-alive on each accepted socket
// (listen_linux.go sets it once on the listener instead).
func listenTCP(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/eddyrt/eddy/internal/wsframe"
)

// wsConn is a deliberately minimal WebSocket client: the load generator
// shares the CPU with the server, so reading must cost little more than the
// read system call. It speaks only what Eddy sends: unmasked text messages
// (possibly fragmented), ping and close. Writes are masked with a zero key
// (allowed by RFC 6455), which makes masking free.
type wsConn struct {
	nc  net.Conn // nil for a poller's connection (poller_linux.go), which has fd
	fd  int
	wmu sync.Mutex
	wb  []byte

	rb   []byte // rb[r:w] is read but not yet consumed
	r, w int
	size int    // the initial read buffer size
	frag []byte // a fragmented message being assembled

	// With a poller (poller_linux.go), rb is the poller's shared buffer
	// while a read is handled, and own holds a partial frame between reads.
	own  []byte
	need int // unread bytes the partial frame takes, as parse said
}

// dialer opens TCP connections, spreading source addresses over 127.0.0.x
// when the target is loopback and more ports are needed than one address has.
type dialer struct {
	perAddr int // connections per source address before moving to the next
	mu      sync.Mutex
	n       int
}

func (d *dialer) localAddr(host string) net.Addr {
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil || d.perAddr <= 0 {
		return nil
	}
	d.mu.Lock()
	i := d.n / d.perAddr
	d.n++
	d.mu.Unlock()
	if i == 0 {
		return nil // the kernel picks 127.0.0.1's ports as usual
	}
	// 127.0.0.2 .. 127.0.0.254; loopback answers on all of 127/8.
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+(i-1)%253))}
}

// dialWS connects and upgrades; readSize is the initial read buffer.
func dialWS(ctx context.Context, d *dialer, rawURL string, readSize int) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("%s: only ws:// URLs are supported by the load tool", rawURL)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "80"
	}
	nd := net.Dialer{Timeout: 10 * time.Second}
	if d != nil {
		nd.LocalAddr = d.localAddr(host)
	}
	nc, err := nd.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, err
	}
	if readSize < 512 {
		readSize = 512
	}
	c := &wsConn{nc: nc, fd: -1, rb: make([]byte, readSize), size: readSize}
	if err := c.handshake(u); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// upgradeRequest is the opening handshake's request, with a fresh key.
func upgradeRequest(u *url.URL) []byte {
	var key [16]byte
	_, _ = rand.Read(key[:])
	b := make([]byte, 0, 160+len(u.Host)+len(u.RequestURI()))
	b = append(b, "GET "...)
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.Host...)
	b = append(b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	b = base64.StdEncoding.AppendEncode(b, key[:])
	return append(b, "\r\n\r\n"...)
}

// upgradeResponse looks for the end of the handshake's response in head:
// ok says it is all there, and then n is its length, err says whether the
// server refused the upgrade.
func upgradeResponse(head []byte) (n int, ok bool, err error) {
	i := bytes.Index(head, []byte("\r\n\r\n"))
	if i < 0 {
		return 0, false, nil
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		line, _, _ := bufio.NewReader(bytes.NewReader(head[:i])).ReadLine()
		return 0, true, fmt.Errorf("upgrade refused: %s", line)
	}
	return i + 4, true, nil
}

func (c *wsConn) handshake(u *url.URL) error {
	_ = c.nc.SetDeadline(time.Now().Add(15 * time.Second))
	defer c.nc.SetDeadline(time.Time{})
	if _, err := c.nc.Write(upgradeRequest(u)); err != nil {
		return err
	}
	for {
		if n, ok, err := upgradeResponse(c.rb[:c.w]); ok {
			c.r = n
			return err
		}
		if c.w == len(c.rb) {
			return errors.New("upgrade response too long")
		}
		n, err := c.nc.Read(c.rb[c.w:])
		c.w += n
		if err != nil {
			return err
		}
	}
}

// writeText sends one text message.
func (c *wsConn) writeText(p []byte) error { return c.writeFrame(0x1, p) }

func (c *wsConn) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := appendFrame(c.wb[:0], op, p)
	err := c.send(b)
	if cap(b) <= 64<<10 {
		c.wb = b[:0]
	}
	return err
}

// writeTexts sends several text messages with one write.
func (c *wsConn) writeTexts(ps ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := c.wb[:0]
	for _, p := range ps {
		b = appendFrame(b, 0x1, p)
	}
	err := c.send(b)
	if cap(b) <= 64<<10 {
		c.wb = b[:0]
	}
	return err
}

// appendFrame appends one masked client frame with a zero mask key, so
// the payload goes as it is.
func appendFrame(b []byte, op byte, p []byte) []byte {
	return wsframe.AppendClientFrame(b, true, wsframe.Opcode(op), p, [4]byte{})
}

// fill makes at least k unread bytes available.
func (c *wsConn) fill(k int) error {
	for c.w-c.r < k {
		if c.r == c.w {
			c.r, c.w = 0, 0
		}
		if len(c.rb)-c.r < k {
			if len(c.rb) >= k {
				c.w = copy(c.rb, c.rb[c.r:c.w])
			} else {
				nb := make([]byte, max(2*len(c.rb), k+4096))
				c.w = copy(nb, c.rb[c.r:c.w])
				c.rb = nb
			}
			c.r = 0
		}
		n, err := c.nc.Read(c.rb[c.w:])
		c.w += n
		if err != nil && c.w-c.r < k {
			return err
		}
	}
	return nil
}

// shrink lets a buffer grown for one big message go once it is consumed.
func (c *wsConn) shrink() {
	if len(c.rb) > 4*c.size && c.w-c.r <= c.size {
		nb := make([]byte, c.size)
		c.w = copy(nb, c.rb[c.r:c.w])
		c.r = 0
		c.rb = nb
	}
	if cap(c.frag) > 4*c.size {
		c.frag = nil
	}
}

// reserve makes room in c's own buffer for the rest of a partial frame
// (the poller's reads, when one is pending).
func (c *wsConn) reserve() {
	if c.r > 0 {
		c.w = copy(c.rb, c.rb[c.r:c.w])
		c.r = 0
	}
	if len(c.rb) < c.need || c.w == len(c.rb) {
		nb := make([]byte, max(c.need, 2*len(c.rb), c.size))
		c.w = copy(nb, c.rb[:c.w])
		c.rb = nb
	}
	c.own = c.rb
}

// keepRest moves the unread end of the poller's shared buffer (a partial
// frame) into c's own buffer, and lets go of the shared one.
func (c *wsConn) keepRest() {
	pend := c.w - c.r
	if pend == 0 {
		c.rb, c.r, c.w = nil, 0, 0
		if cap(c.own) > 4*c.size {
			c.own = nil // grown for one big message
		}
		return
	}
	if len(c.own) < max(c.need, pend+1) {
		c.own = make([]byte, max(c.need, pend+4096, c.size))
	}
	c.w = copy(c.own, c.rb[c.r:c.w])
	c.r = 0
	c.rb = c.own
}

// CloseError is a close frame from the server.
type CloseError struct {
	Code   uint16
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed by server: %d %s", e.Code, e.Reason) }

// next returns the next text message. Its bytes stay valid until the next
// call. Pings are answered on the way.
func (c *wsConn) next() ([]byte, error) {
	c.shrink()
	for {
		msg, need, err := c.parse()
		if err != nil || need == 0 {
			return msg, err
		}
		if err := c.fill(need); err != nil {
			return nil, err
		}
	}
}

// maxFrame bounds one frame's length: a longer length field is an error
// rather than an allocation of that size (Eddy's messages are far smaller).
const maxFrame = 1 << 30

// parse takes the next text message from the bytes already read, without
// reading more: the read loop (next) and the poller (poller_linux.go) share
// it. When no whole message is buffered, need > 0 is how many unread bytes
// (from c.r) the frame under way takes; msg is then nil. Pings are answered
// and pongs skipped on the way; a close frame is a *CloseError.
func (c *wsConn) parse() (msg []byte, need int, err error) {
	for {
		avail := c.w - c.r
		if avail < 2 {
			return nil, 2, nil
		}
		b0, b1 := c.rb[c.r], c.rb[c.r+1]
		hl, n := 2, int(b1&0x7f)
		switch n {
		case 126:
			if avail < 4 {
				return nil, 4, nil
			}
			n, hl = int(binary.BigEndian.Uint16(c.rb[c.r+2:])), 4
		case 127:
			if avail < 10 {
				return nil, 10, nil
			}
			u := binary.BigEndian.Uint64(c.rb[c.r+2:])
			if u > maxFrame {
				return nil, 0, fmt.Errorf("frame of %d bytes: over the load tool's %d", u, maxFrame)
			}
			n, hl = int(u), 10
		}
		masked := b1&0x80 != 0
		if masked {
			hl += 4
		}
		if avail < hl+n {
			return nil, hl + n, nil
		}
		p := c.rb[c.r+hl : c.r+hl+n]
		if masked {
			mask := c.rb[c.r+hl-4 : c.r+hl]
			for i := range p {
				p[i] ^= mask[i&3]
			}
		}
		c.r += hl + n
		fin, op := b0&0x80 != 0, b0&0x0f
		switch op {
		case 0x9: // ping
			if err := c.writeFrame(0xA, p); err != nil {
				return nil, 0, err
			}
		case 0xA:
		case 0x8:
			ce := &CloseError{}
			if len(p) >= 2 {
				ce.Code = binary.BigEndian.Uint16(p)
				ce.Reason = string(p[2:])
			}
			return nil, 0, ce
		case 0x0: // continuation
			c.frag = append(c.frag, p...)
			if fin {
				out := c.frag
				c.frag = c.frag[:0:0]
				return out, 0, nil
			}
		case 0x1, 0x2:
			if !fin {
				c.frag = append(c.frag[:0], p...)
				continue
			}
			return p, 0, nil
		}
	}
}

// send writes b whole: through the net.Conn, or on a poller's connection
// (no net.Conn) to the non-blocking socket directly. c.wmu is held.
func (c *wsConn) send(b []byte) error {
	if c.nc != nil {
		_, err := c.nc.Write(b)
		return err
	}
	if c.fd < 0 {
		return net.ErrClosed
	}
	return writeNow(c.fd, b)
}

func (c *wsConn) close() error {
	if c.nc != nil {
		return c.nc.Close()
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.fd < 0 {
		return net.ErrClosed
	}
	err := closeFD(c.fd)
	c.fd = -1 // never closed twice: the number may be another socket's by then
	return err
}

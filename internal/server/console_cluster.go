package server

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Disconnecting a user across a cluster: the node that gets the call
// closes the user's connections it holds and sends a notice over the
// broker's notifications (Redis); every other node closes its own and
// answers with how many, which the first node sums for the caller.

const (
	noticePrefix          = "eddy:admin:"
	topicDisconnect       = noticePrefix + "disconnect"
	topicDisconnected     = noticePrefix + "disconnected"
	disconnectReplyWindow = 2 * time.Second
)

// NoticeRelay hands the broker's notifications on the console's topics to
// the server. node.Build makes one, routes its notifications through
// Route, and gives it to the server in Options.Notices; without one, a
// disconnect acts on the answering node only.
type NoticeRelay struct {
	fn atomic.Pointer[func(topic string, payload []byte)]
}

// Route handles topic if it is one of the console's and reports whether it was.
func (r *NoticeRelay) Route(topic string, payload []byte) bool {
	if !strings.HasPrefix(topic, noticePrefix) {
		return false
	}
	if f := r.fn.Load(); f != nil {
		(*f)(topic, payload)
	}
	return true
}

type disconnectNotice struct {
	ID     string `json:"id"`
	From   string `json:"from"`
	User   string `json:"user"`
	Reason string `json:"reason"`
}

type disconnectReply struct {
	ID    string `json:"id"`
	Node  string `json:"node"`
	Count int    `json:"count"`
}

// pendingDisconnects are the cluster disconnects waiting for replies.
type pendingDisconnects struct {
	mu sync.Mutex
	m  map[string]chan disconnectReply
}

// attachNotices makes the server the receiver of r's notices.
func (s *Server) attachNotices(r *NoticeRelay) {
	if r == nil {
		return
	}
	s.pending.m = make(map[string]chan disconnectReply)
	fn := s.handleNotice
	r.fn.Store(&fn)
}

// clustered reports whether disconnects reach the other nodes.
func (s *Server) clustered() bool { return s.opts.Notices != nil && s.abil.Notifier != nil }

// handleNotice runs on the broker's notification goroutine: it must not
// block, so the replies are sent from goroutines of their own.
func (s *Server) handleNotice(topic string, payload []byte) {
	switch topic {
	case topicDisconnect:
		var n disconnectNotice
		if err := json.Unmarshal(payload, &n); err != nil || n.From == s.nodeID || n.User == "" {
			return
		}
		d, err := operatorDisconnect(n.Reason)
		if err != nil {
			d = protocol.DisconnectByOperator
		}
		count := s.disconnectLocal(n.User, d)
		b, _ := json.Marshal(disconnectReply{ID: n.ID, Node: s.nodeID, Count: count})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), disconnectReplyWindow)
			defer cancel()
			if err := s.abil.Notifier.Notify(ctx, topicDisconnected, b); err != nil {
				s.log.Warn("admin disconnect: reply", "err", err)
			}
		}()
	case topicDisconnected:
		var r disconnectReply
		if err := json.Unmarshal(payload, &r); err != nil {
			return
		}
		s.pending.mu.Lock()
		ch := s.pending.m[r.ID]
		s.pending.mu.Unlock()
		if ch != nil {
			select {
			case ch <- r:
			default: // more replies than nodes: the extra ones change nothing
			}
		}
	}
}

// disconnectCluster asks the other nodes to close user's connections and
// waits a short while for their answers: how many they closed, and how
// many nodes answered.
func (s *Server) disconnectCluster(ctx context.Context, user string, d protocol.Disconnect) (closed, answered int, err error) {
	others := 0
	if reg := s.abil.Nodes; reg != nil {
		nodes, err := reg.Nodes(ctx)
		if err != nil {
			return 0, 0, err
		}
		for _, n := range nodes {
			if n.ID != s.nodeID {
				others++
			}
		}
	}
	if others == 0 {
		return 0, 0, nil
	}
	id := s.nextID("d-")
	ch := make(chan disconnectReply, others)
	s.pending.mu.Lock()
	s.pending.m[id] = ch
	s.pending.mu.Unlock()
	defer func() {
		s.pending.mu.Lock()
		delete(s.pending.m, id)
		s.pending.mu.Unlock()
	}()
	b, _ := json.Marshal(disconnectNotice{ID: id, From: s.nodeID, User: user, Reason: d.Reason})
	if err := s.abil.Notifier.Notify(ctx, topicDisconnect, b); err != nil {
		return 0, 0, err
	}
	wait := time.NewTimer(disconnectReplyWindow)
	defer wait.Stop()
	seen := map[string]bool{}
	for len(seen) < others {
		select {
		case r := <-ch:
			if !seen[r.Node] {
				seen[r.Node] = true
				closed += r.Count
			}
		case <-wait.C:
			return closed, len(seen), nil
		case <-ctx.Done():
			return closed, len(seen), nil
		}
	}
	return closed, len(seen), nil
}

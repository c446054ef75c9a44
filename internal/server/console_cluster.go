package server

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/protocol"
)

// The console's questions to the whole cluster: listing a user's
// connections and disconnecting a user. The node that gets the call
// answers for itself and asks the others over the broker's notifications
// (Redis); each answers with a reply that the first node merges, waiting
// at most noticeReplyWindow for them. The Pusher API's channel counts ask
// the same way (pusher_cluster.go).

const (
	noticePrefix      = "eddy:admin:"
	topicAsk          = noticePrefix + "ask"
	topicReply        = noticePrefix + "reply"
	noticeReplyWindow = 2 * time.Second
)

// NoticeRelay hands the broker's notifications on the console's topics to
// the server. node.Build makes one, routes its notifications through
// Route, and gives it to the server in Options.Notices; without one, the
// console's calls answer for the node that gets them only.
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

// clusterAsk is one question to the other nodes.
type clusterAsk struct {
	ID     string `json:"id"`
	From   string `json:"from"`
	Kind   string `json:"kind"` // "disconnect", "connections", or the Pusher API's askPusherList, askPusherCount
	User   string `json:"user"`
	Reason string `json:"reason,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	// The Pusher API's channel queries (pusher_cluster.go), in App's space.
	App      string   `json:"app,omitempty"`
	Prefix   string   `json:"prefix,omitempty"`
	Channels []string `json:"channels,omitempty"`
}

// clusterReply is one node's answer.
type clusterReply struct {
	ID          string               `json:"id"`
	Node        string               `json:"node"`
	Count       int                  `json:"count"` // disconnect: closed; connections: how many match
	Connections []api.ConnectionInfo `json:"connections,omitempty"`
	// The Pusher API's channel queries (pusher_cluster.go).
	Counts    map[string]int `json:"counts,omitempty"`
	Truncated bool           `json:"truncated,omitempty"`
}

// pendingAsks are the questions waiting for replies.
type pendingAsks struct {
	mu sync.Mutex
	m  map[string]chan clusterReply
}

// attachNotices makes the server the receiver of r's notices.
func (s *Server) attachNotices(r *NoticeRelay) {
	if r == nil {
		return
	}
	s.pending.m = make(map[string]chan clusterReply)
	fn := s.handleNotice
	r.fn.Store(&fn)
}

// clustered reports whether the console's questions reach the other nodes.
func (s *Server) clustered() bool { return s.opts.Notices != nil && s.abil.Notifier != nil }

// handleNotice runs on the broker's notification goroutine: it must not
// block, so the answer is worked out and sent from a goroutine of its own.
func (s *Server) handleNotice(topic string, payload []byte) {
	switch topic {
	case topicAsk:
		var q clusterAsk
		if err := json.Unmarshal(payload, &q); err != nil || q.From == s.nodeID || q.User == "" && q.Kind == "disconnect" {
			return
		}
		go s.answer(q)
	case topicReply:
		var r clusterReply
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

// answer works out this node's reply to q and sends it.
func (s *Server) answer(q clusterAsk) {
	r := clusterReply{ID: q.ID, Node: s.nodeID}
	switch q.Kind {
	case "disconnect":
		d, err := operatorDisconnect(q.Reason)
		if err != nil {
			d = protocol.DisconnectByOperator
		}
		r.Count = s.disconnectLocal(q.User, d)
	case "connections":
		r.Connections, r.Count = s.localConnections(q.User, min(max(q.Limit, 1), maxListed))
	case askPusherList, askPusherCount:
		s.pusherAnswer(q, &r)
	default:
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		s.log.Error("console: encode a cluster reply", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), noticeReplyWindow)
	defer cancel()
	if err := s.abil.Notifier.Notify(ctx, topicReply, b); err != nil {
		s.log.Warn("console: reply to another node", "kind", q.Kind, "err", err)
	}
}

// askCluster sends q to the other nodes and collects their replies, for
// at most noticeReplyWindow. Each node is counted once.
func (s *Server) askCluster(ctx context.Context, q clusterAsk) ([]clusterReply, error) {
	replies, _, err := s.askClusterCounted(ctx, q)
	return replies, err
}

// askClusterCounted is askCluster that also says how many other nodes
// were asked.
func (s *Server) askClusterCounted(ctx context.Context, q clusterAsk) ([]clusterReply, int, error) {
	others := 0
	if reg := s.abil.Nodes; reg != nil {
		nodes, err := reg.Nodes(ctx)
		if err != nil {
			return nil, 0, err
		}
		for _, n := range nodes {
			if n.ID != s.nodeID {
				others++
			}
		}
	}
	if others == 0 {
		return nil, 0, nil
	}
	q.ID, q.From = s.nextID("q-"), s.nodeID
	ch := make(chan clusterReply, others)
	s.pending.mu.Lock()
	s.pending.m[q.ID] = ch
	s.pending.mu.Unlock()
	defer func() {
		s.pending.mu.Lock()
		delete(s.pending.m, q.ID)
		s.pending.mu.Unlock()
	}()
	b, _ := json.Marshal(q)
	if err := s.abil.Notifier.Notify(ctx, topicAsk, b); err != nil {
		return nil, others, err
	}
	wait := time.NewTimer(noticeReplyWindow)
	defer wait.Stop()
	var replies []clusterReply
	seen := map[string]bool{}
	for len(seen) < others {
		select {
		case r := <-ch:
			if !seen[r.Node] {
				seen[r.Node] = true
				replies = append(replies, r)
			}
		case <-wait.C:
			return replies, others, nil
		case <-ctx.Done():
			return replies, others, nil
		}
	}
	return replies, others, nil
}

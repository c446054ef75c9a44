package server

// This file makes the Pusher HTTP API's channel queries (GET /channels,
// GET /channels/{channel} and the info of a trigger) count every node's
// subscribers, not only the answering node's. It asks the other nodes
// with the console's question mechanism (console_cluster.go: one Redis
// notice out, one reply per node, merged here), so it costs one Redis
// publish per query plus one per node that answers, and waits at most
// noticeReplyWindow. A node that does not answer in time is left out of
// the counts: the query says so in the header pusherUnansweredHeader and
// the log, rather than failing, because the other nodes' counts are still
// true. Without the console's notices (one node, or NATS) the counts are
// this node's, as before.

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/eddyrt/eddy/internal/pusher"
)

// pusherChannelLimit is the bound in force: defaultPusherChannels, lower
// in a test that checks the cut without making 10,000 channels.
var pusherChannelLimit atomic.Int64

func init() { pusherChannelLimit.Store(defaultPusherChannels) }

func maxPusherChannels() int { return int(pusherChannelLimit.Load()) }

const (
	// defaultPusherChannels bounds the channels one node reports for a
	// listing, and the listing itself: each node reports its first ones by
	// name, so the merged first ones are the cluster's.
	defaultPusherChannels = 10000

	askPusherList  = "pusher-list"  // channels whose names start with clusterAsk.Prefix
	askPusherCount = "pusher-count" // the channels in clusterAsk.Channels

	// pusherUnansweredHeader carries how many other nodes did not answer
	// in time (their subscribers are missing from the counts).
	pusherUnansweredHeader = "X-Eddy-Nodes-Unanswered"
	// pusherTruncatedHeader says a listing stopped at the bound.
	pusherTruncatedHeader = "X-Eddy-Channels-Truncated"
)

// pusherCounts is the subscription count of each occupied channel that a
// query covers, summed over the nodes that answered.
type pusherCounts struct {
	subs       map[string]int
	unanswered int  // other nodes that did not answer in time
	truncated  bool // a listing cut at maxPusherChannels()
}

// mark tells the caller, in headers, what the counts are missing.
func (c *pusherCounts) mark(w http.ResponseWriter) {
	if c.unanswered > 0 {
		w.Header().Set(pusherUnansweredHeader, strconv.Itoa(c.unanswered))
	}
	if c.truncated {
		w.Header().Set(pusherTruncatedHeader, strconv.Itoa(maxPusherChannels()))
	}
}

// pusherLocalList counts this node's occupied channels whose names start
// with prefix: the first maxPusherChannels() of them by name, and whether
// there were more.
func (s *Server) pusherLocalList(a *appState, prefix string) (map[string]int, bool) {
	var names []string
	a.hub.EachChannel(prefix, func(name string, _ int) {
		if pusher.ValidateChannel(name) == nil {
			names = append(names, name)
		}
	})
	slices.Sort(names)
	names = slices.Compact(names)
	limit := maxPusherChannels()
	out := make(map[string]int, min(len(names), limit))
	for _, name := range names {
		n := s.pusherSubscriptionCount(a, name)
		if n <= 0 {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out[name] = n
	}
	return out, false
}

// pusherLocalCount counts this node's subscriptions of channels, leaving
// out the unoccupied ones.
func (s *Server) pusherLocalCount(a *appState, channels []string) map[string]int {
	out := make(map[string]int, len(channels))
	for _, ch := range channels {
		if n := s.pusherSubscriptionCount(a, ch); n > 0 {
			out[ch] = n
		}
	}
	return out
}

// pusherAnswer is this node's reply to another node's Pusher question.
func (s *Server) pusherAnswer(q clusterAsk, r *clusterReply) {
	a, ok := s.appByID(q.App)
	if !ok {
		return // an app this node does not know (yet): nothing of it here
	}
	switch q.Kind {
	case askPusherList:
		r.Counts, r.Truncated = s.pusherLocalList(a, q.Prefix)
	case askPusherCount:
		if limit := maxPusherChannels(); len(q.Channels) > limit {
			q.Channels = q.Channels[:limit]
		}
		r.Counts = s.pusherLocalCount(a, q.Channels)
	}
}

// pusherListChannels counts the occupied channels whose names start with
// prefix on every node.
func (s *Server) pusherListChannels(ctx context.Context, a *appState, prefix string) (pusherCounts, error) {
	local, truncated := s.pusherLocalList(a, prefix)
	c, err := s.pusherMerge(ctx, local, clusterAsk{Kind: askPusherList, App: a.id, Prefix: prefix})
	c.truncated = c.truncated || truncated
	if limit := maxPusherChannels(); len(c.subs) > limit {
		names := make([]string, 0, len(c.subs))
		for name := range c.subs {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names[limit:] {
			delete(c.subs, name)
		}
		c.truncated = true
	}
	return c, err
}

// pusherCountChannels counts the subscriptions of channels on every node.
func (s *Server) pusherCountChannels(ctx context.Context, a *appState, channels []string) (pusherCounts, error) {
	channels = slices.Compact(slices.Sorted(slices.Values(channels)))
	return s.pusherMerge(ctx, s.pusherLocalCount(a, channels), clusterAsk{Kind: askPusherCount, App: a.id, Channels: channels})
}

// pusherMerge adds the other nodes' answers to q to this node's counts.
// On an error the counts are this node's alone.
func (s *Server) pusherMerge(ctx context.Context, local map[string]int, q clusterAsk) (pusherCounts, error) {
	c := pusherCounts{subs: local}
	if !s.clustered() {
		return c, nil
	}
	replies, others, err := s.askClusterCounted(ctx, q)
	if err != nil {
		return c, err
	}
	for _, rep := range replies {
		for name, n := range rep.Counts {
			if n > 0 {
				c.subs[name] += n
			}
		}
		c.truncated = c.truncated || rep.Truncated
	}
	if c.unanswered = others - len(replies); c.unanswered > 0 {
		s.log.Warn("pusher: nodes did not answer a channel query in time; their subscribers are not counted",
			"kind", q.Kind, "unanswered", c.unanswered, "nodes", others+1)
	}
	return c, nil
}

// pusherTriggerCounts counts channels for a trigger's info, when attrs ask
// for subscription_count. The events are published by then, so a failed
// question gives this node's counts (and a warning in the log) rather
// than an error that would make the SDK publish again.
func (s *Server) pusherTriggerCounts(ctx context.Context, w http.ResponseWriter, a *appState, attrs string, channels []string) map[string]int {
	if !wantsSubscriptionCount(attrs) {
		return nil
	}
	c, err := s.pusherCountChannels(ctx, a, channels)
	if err != nil {
		s.log.Warn("pusher: trigger info counts this node only", "err", err)
	}
	c.mark(w)
	return c.subs
}

func wantsSubscriptionCount(attrs string) bool {
	for a := range strings.SplitSeq(attrs, ",") {
		if strings.TrimSpace(a) == "subscription_count" {
			return true
		}
	}
	return false
}

// Package redis is the broker for cluster mode: several Eddy nodes share
// channel streams, history, presence and a node registry through Redis, so
// that a message published on one node reaches subscribers on all of them.
//
// # Client
//
// It uses github.com/redis/rueidis rather than go-redis/v9: rueidis
// pipelines concurrent commands on one connection by default (go-redis
// marks its auto-pipelining experimental), runs Lua scripts by EVALSHA with
// an EVAL fallback, and gives dedicated connections with pub/sub hooks
// called from the connection's single reader goroutine. The choice rests on
// the measurements in the project's shared notes; this package did not
// measure go-redis again. BenchmarkPublish measures the rueidis path.
//
// # Streams
//
// Each channel has a meta hash (epoch, top offset) and, when its history is
// kept, a stream whose entry ids are the offsets. Publish is one Lua script:
// it creates an epoch if the meta hash is missing (new channel, expired, or
// lost with a Redis restart without persistence: recovering clients then
// see another epoch and get recovered:false), increments the offset, XADDs
// with an exact MAXLEN, sets expiries and PUBLISHes the message with its
// offset and epoch. Redis runs scripts one at a time, so publishers on any
// number of nodes never produce a duplicate or a gap, and the pub/sub order
// of a channel is its offset order.
//
// History is one script too; messages older than HistoryTTL count as gone
// (by their ts), and the stream key also expires HistoryTTL after the last
// publish. A channel's meta hash lives Options.MetaTTL after its last
// publish.
//
// # Delivery
//
// A node subscribes in Redis only to channels that have local subscribers:
// one dedicated pub/sub connection per shard, with concurrent Subscribe
// calls joined into one SUBSCRIBE. Messages are decoded once, in that
// connection's reader goroutine, and handed to the Handler in order. Every
// node, the publishing one included, gets its messages through Redis.
//
// # Sharding
//
// Options.Addrs lists independent Redis servers; channels are spread over
// them by jump consistent hashing of the channel name, so every node must
// list the same servers in the same order. The node registry and the
// control channel live on the first one. Keys of a channel carry the hash
// tag {channel}, so each script touches one slot.
//
// With Options.Cluster, Addrs are seeds of one Redis Cluster: the client
// follows its slot map, the scripts SPUBLISH to a shard channel tagged like
// the keys, and each subscribed channel is one SSUBSCRIBE kept at the
// master of its slot (sharded.go). With Options.SentinelMaster the one
// shard is whichever server the Sentinels name master (failover.go). In
// both modes the scripts start a new epoch for a channel when they run on
// a promoted replica (takeoverLua), and Options.WaitReplicas can make a
// publish wait for replicas (wait.go). docs/cluster.md says what a
// failover can lose.
//
// # Failures
//
// When a shard goes away, calls that need it fail with an error wrapping
// broker.ErrUnavailable (a Publish is never silently lost), Ready turns
// false, and a background loop reconnects with backoff, subscribes every
// channel that still has local subscribers, re-adds this node's presence
// members, and turns Ready true again. Messages published while a node was
// disconnected are not delivered to it; its clients recover them from
// history.
package redis

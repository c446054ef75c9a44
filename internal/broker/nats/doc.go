// Package nats is the NATS broker: one JetStream stream numbers and keeps
// every channel's messages and republishes each stored message on NATS core,
// where each node subscribes only to the channels it has subscribers of; a
// JetStream key-value bucket with a TTL keeps presence.
//
// Layout, under a prefix (default "eddy"), with a channel name encoded as one
// subject token (unpadded base64url, so dots and wildcards in channel names
// cannot leak into subjects):
//
//	<prefix>.h.<token>   stream subject: a channel's history; the stream is <PREFIX>_HISTORY
//	<prefix>.d.<token>   core subject: the stream republishes each stored message here,
//	                     presence events are published here directly
//	<prefix>_presence    KV bucket: key <token>.<conn token>, value the member's JSON
//
// Numbering. Each stored message carries its offset and epoch in headers. A
// publish reads (or remembers) the channel's last stored message and
// publishes offset+1 with Nats-Expected-Last-Subject-Sequence set to that
// message's stream sequence: JetStream stores it only if no other publisher
// got there first, so two publishers never take one offset and none is
// skipped; the loser reads the new last message and tries again. A channel
// with no stored message gets a fresh epoch on its first publish (or first
// history read, which stores an epoch marker at offset 0), created the same
// way, so concurrent first publishers agree on one epoch.
//
// Delivery. RePublish runs on the stream leader in stream order, and only
// for messages the stream accepted, so a node sees a channel's messages in
// offset order, each once, and never a message whose publish was refused.
package nats

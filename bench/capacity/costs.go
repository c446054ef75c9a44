package capacity

// Costs are the unit costs the model multiplies. Each default below was
// measured on the project's 2-vCPU test machine (shared with up to seven
// other sessions, so figures carry ±20-40% noise) or is marked as an
// estimate; docs/capacity.md gives the command behind every one. CPU
// figures are process CPU time (utime+stime) per operation, which depends
// far less on the neighbours than throughput does.
type Costs struct {
	// Eddy node CPU, µs of one core.
	DeliveryCPU      float64 // per message written to one subscriber (batched fan-out)
	PublishCPU       float64 // per publish received through the HTTP API (request, broker round trip, answer)
	IngressCPU       float64 // per message a node receives from Redis pub/sub for its local subscribers
	ConnectCPU       float64 // per new connection (TLS not included: terminated in front or not used)
	PresenceEventCPU float64 // per join/leave event delivered to one member

	// Eddy node memory.
	// RSS per idle connection with one subscription. The default is a
	// plain-TCP, uncompressed WebSocket, which the node reads without a
	// goroutine of its own (internal/server/wsread.go). TLS terminated by
	// Eddy and permessage-deflate keep gws's read goroutine, so they cost at
	// least what every connection did before that change: about 8.5 KiB
	// (8,209-8,653 B, the "before" runs of bench/README.md "Issue 14, round
	// four"; crypto/tls's own memory was not measured). Plan them with
	// eddy capacity --conn-kib 8.5.
	ConnKiB          float64
	KernelSocketKiB  float64 // kernel memory per idle TCP socket, outside RSS
	SubscriptionKiB  float64 // per subscription beyond the first of a connection
	NodeBaseMiB      float64 // RSS of an empty node
	EnvelopeBytes    float64 // message frame bytes around the payload (type, channel, id, ts, offset, epoch, user)
	PresenceEvBytes  float64 // one join or leave frame
	WSHeaderBytes    float64 // WebSocket frame header per written frame (shared by a batch; counted per message: an upper bound)
	RedisMsgOverhead float64 // bytes Redis sends a node per pub/sub message besides the payload
	RedisPubOverhead float64 // bytes a node sends Redis per publish besides the payload (EVALSHA and its arguments)

	// Redis CPU, µs of its one core (process CPU, not commandstats wall time).
	RedisPublishCPU      float64 // per publish: one EVALSHA (offset, meta, PUBLISH) without history
	RedisHistoryCPU      float64 // extra per publish when the channel keeps history (XADD with trim)
	RedisPerNodeCPU      float64 // per extra node subscribed to the channel (PUBLISH writes one copy per subscriber connection)
	RedisSubscribeCPU    float64 // per client subscription (position read EVALSHA, SUBSCRIBE when the channel is new on the node)
	RedisJoinCPU         float64 // per presence join with its leave (add script, member list read, HDEL+ZREM, two event PUBLISHes)
	RedisRefreshCPU      float64 // per member per refresh (HSET+ZADD in batches of 256)
	PresenceRefreshEvery float64 // seconds between refreshes of a member (presence_ttl / 3)

	// Redis memory, bytes.
	HistoryEntryBytes float64 // per history stream entry besides the payload (the entry's JSON fields and the stream's own overhead)
	ChannelMetaBytes  float64 // per channel with an offset (the eddy:m hash)
	PresenceMemBytes  float64 // per presence member (hash field + sorted set entry)
}

// DefaultCosts are the figures measured for docs/capacity.md.
func DefaultCosts() Costs {
	return Costs{
		DeliveryCPU:          2.0,  // bench/README.md: 1.70 µs single node, 2.00 µs two nodes over Redis (results/final-*-1000*.json); 1.53 µs measured again here
		PublishCPU:           90,   // runs C and H: the node serving the API with no subscribers, 86 and 91 µs per publish over Redis (load average 10-20)
		IngressCPU:           20,   // run H: the subscriber node's CPU per message received from Redis (19.6 µs, 77 messages per write); run C by subtraction: ~30 µs
		ConnectCPU:           150,  // bench/README.md: 149-151 µs per connection (r2 connections pairs); 250 µs at load 14 over Redis (run D)
		PresenceEventCPU:     0.73, // derived, run E: node CPU minus connects over 2,032,756 events
		ConnKiB:              5.8,  // bench/README.md "Issue 14, round four": 5,242-5,937 B, the highest taken (results/r14-round4/conns*-main-*.json); see the field for TLS
		KernelSocketKiB:      4.7,  // STYLE.md measured facts: kernel memory per idle socket outside RSS
		SubscriptionKiB:      0.5,  // estimate: hub slice entry, subscription record, timers
		NodeBaseMiB:          40,   // empty node RSS 20-38 MiB (bench/README.md, run D)
		EnvelopeBytes:        160,  // counted: docs/protocol.md message frame with a real message id and epoch
		PresenceEvBytes:      123,  // counted: docs/protocol.md presence frame with a real connection id
		WSHeaderBytes:        4,    // RFC 6455 server frame header for 126-65535 bytes
		RedisMsgOverhead:     155,  // run C: total_net_output_bytes / PUBLISH minus the ~40 B payload
		RedisPubOverhead:     310,  // run C: total_net_input_bytes / publish minus the payload
		RedisPublishCPU:      32,   // run C: Redis process CPU 0.30 s over 9,489 publishes and 1,000 subscribes; run H: 30 µs (commandstats EVALSHA 20.9-57.8 µs)
		RedisHistoryCPU:      7,    // run B: commandstats XADD 7.05 µs per call
		RedisPerNodeCPU:      2.4,  // redis-benchmark PUBLISH with 0 and 50 subscribed connections: (117-131 µs − 7-10 µs) / 50
		RedisSubscribeCPU:    53,   // run D: Redis process CPU 0.16 s over 3,000 subscribes (commandstats 25.7 µs)
		RedisJoinCPU:         205,  // run E: Redis process CPU 0.41 s over 2,000 joins and 1,996 leaves
		RedisRefreshCPU:      23,   // run F: commandstats HSET+ZADD usec over 16,807 member refreshes
		PresenceRefreshEvery: 10,   // presence_ttl 30 s / 3 (internal/broker/redis/presence.go refreshLoop)
		HistoryEntryBytes:    160,  // run B: MEMORY USAGE of a 100-entry stream 19,040 B, payloads of 31 B: 190 B per entry
		ChannelMetaBytes:     120,  // run D: MEMORY USAGE of eddy:m:{channel} 104-120 B
		PresenceMemBytes:     246,  // run G: MEMORY USAGE eddy:p + eddy:px with 1,000 members: 128,320 + 118,160 B
	}
}

package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"

	"github.com/redis/rueidis"
)

// publishSHA is the SHA1 of publishLua, for EVALSHA.
var publishSHA = func() string {
	h := sha1.Sum([]byte(publishLua))
	return hex.EncodeToString(h[:])
}()

// publishWait runs the publish script and WAIT on one dedicated connection:
// WAIT counts the replicas that acknowledged the writes of its own
// connection, so it must follow the script there (over the shared
// pipelined connection it would wait for nothing). It returns the script's
// reply and how many replicas acknowledged.
//
// A dedicated connection is not redirected by rueidis: when the client's
// slot map is stale (the slot moved, or a replica was promoted) the old
// owner answers MOVED (or ASK during a migration). The script did not run
// then, so it is sent once more, to the node the reply names; rueidis
// reads the slot map again by itself after such a reply.
func (b *Broker) publishWait(ctx context.Context, c rueidis.Client, keys, args []string) ([]rueidis.RedisMessage, int64, error) {
	res, replicas, err := b.publishWaitOn(ctx, c, keys, args, false)
	if err == nil {
		return res, replicas, nil
	}
	re, ok := rueidis.IsRedisErr(err)
	if !ok {
		return nil, 0, err
	}
	addr, ask := re.IsAsk()
	if !ask {
		var moved bool
		if addr, moved = re.IsMoved(); !moved {
			return nil, 0, err
		}
	}
	nc, ok := c.Nodes()[addr]
	if !ok {
		return nil, 0, err // a node the client has not met: refused; the refreshed map will have it
	}
	return b.publishWaitOn(ctx, nc, keys, args, ask)
}

// publishWaitOn is one attempt of publishWait through c, preceded by
// ASKING when asking is set.
func (b *Broker) publishWaitOn(ctx context.Context, c rueidis.Client, keys, args []string, asking bool) ([]rueidis.RedisMessage, int64, error) {
	var res []rueidis.RedisMessage
	var replicas int64
	err := c.Dedicated(func(d rueidis.DedicatedClient) error {
		run := func(script rueidis.Completed) []rueidis.RedisResult {
			wait := d.B().Wait().Numreplicas(int64(b.opts.WaitReplicas)).Timeout(b.opts.WaitTimeout.Milliseconds()).Build()
			if asking {
				return d.DoMulti(ctx, d.B().Asking().Build(), script, wait)[1:]
			}
			return d.DoMulti(ctx, script, wait)
		}
		rs := run(d.B().Evalsha().Sha1(publishSHA).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
		if err := rs[0].Error(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// Not loaded on this server (new, restarted or promoted): the
			// script did not run; send its text.
			rs = run(d.B().Eval().Script(publishLua).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
		}
		var err error
		if res, err = rs[0].ToArray(); err != nil {
			return err
		}
		if replicas, err = rs[1].AsInt64(); err != nil {
			replicas = 0 // the script ran: not acknowledged, yet not refused either
		}
		return nil
	})
	return res, replicas, err
}

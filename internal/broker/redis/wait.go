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
func (b *Broker) publishWait(ctx context.Context, c rueidis.Client, keys, args []string) ([]rueidis.RedisMessage, int64, error) {
	var res []rueidis.RedisMessage
	var replicas int64
	err := c.Dedicated(func(d rueidis.DedicatedClient) error {
		wait := d.B().Wait().Numreplicas(int64(b.opts.WaitReplicas)).Timeout(b.opts.WaitTimeout.Milliseconds()).Build()
		script := d.B().Evalsha().Sha1(publishSHA).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
		rs := d.DoMulti(ctx, script, wait)
		if err := rs[0].Error(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// Not loaded on this server (new, restarted or promoted): the
			// script did not run; send its text.
			script = d.B().Eval().Script(publishLua).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
			wait = d.B().Wait().Numreplicas(int64(b.opts.WaitReplicas)).Timeout(b.opts.WaitTimeout.Milliseconds()).Build()
			rs = d.DoMulti(ctx, script, wait)
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

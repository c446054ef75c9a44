package server

// SetPusherChannelLimit lowers the bound on a Pusher channel listing, for
// the test that checks the cut, and returns what puts it back.
func SetPusherChannelLimit(n int) (restore func()) {
	old := pusherChannelLimit.Swap(int64(n))
	return func() { pusherChannelLimit.Store(old) }
}

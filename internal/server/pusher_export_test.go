package server

// WithPusherActivity sets the Pusher activity_timeout, in seconds, below
// Pusher's 120, so a test sees the server's pusher:ping soon.
func WithPusherActivity(o Options, seconds int) Options {
	o.pusherActivity = seconds
	return o
}

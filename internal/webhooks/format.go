package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/eddyrt/eddy/internal/config"
)

// Headers of the Eddy format: the signature, and the ids of the batch's
// events for receivers that dedupe before parsing.
const (
	HeaderSignature = "X-Eddy-Signature"
	HeaderPusherKey = "X-Pusher-Key"
	HeaderPusherSig = "X-Pusher-Signature"
)

// Body is what one POST carries, in both formats.
type Body struct {
	TimeMS int64   `json:"time_ms"`
	Events []Event `json:"events"`
}

// pusherEvent is an event as Pusher's webhooks write it: no id (Pusher's
// events have none), only the fields of its kind.
type pusherEvent struct {
	Name     string `json:"name"`
	Channel  string `json:"channel"`
	UserID   string `json:"user_id,omitempty"`
	Event    string `json:"event,omitempty"`
	Data     string `json:"data,omitempty"`
	SocketID string `json:"socket_id,omitempty"`
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// Sign is the Eddy signature of body: "sha256=" and the hex HMAC-SHA256
// of the raw body with the webhook's secret.
func Sign(secret string, body []byte) string { return "sha256=" + hmacHex(secret, body) }

// SignPusher is the X-Pusher-Signature of body: the hex HMAC-SHA256 of the
// raw body with the app's Pusher secret.
func SignPusher(secret string, body []byte) string { return hmacHex(secret, body) }

func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// encodeBatch is the body and headers of one POST of events to h.
func encodeBatch(h config.Webhook, events []Event, now time.Time) ([]byte, http.Header, error) {
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", "eddy-webhooks")
	var body []byte
	var err error
	if h.Format == config.WebhookFormatPusher {
		pe := make([]pusherEvent, len(events))
		for i, e := range events {
			pe[i] = pusherEvent{Name: e.Name, Channel: e.Channel, UserID: e.UserID, Event: e.Event, Data: e.Data, SocketID: e.SocketID}
		}
		body, err = json.Marshal(struct {
			TimeMS int64         `json:"time_ms"`
			Events []pusherEvent `json:"events"`
		}{now.UnixMilli(), pe})
		if err != nil {
			return nil, nil, fmt.Errorf("encode pusher body: %w", err)
		}
		header.Set(HeaderPusherKey, h.Key)
		header.Set(HeaderPusherSig, SignPusher(h.Secret, body))
		return body, header, nil
	}
	body, err = json.Marshal(Body{TimeMS: now.UnixMilli(), Events: events})
	if err != nil {
		return nil, nil, fmt.Errorf("encode body: %w", err)
	}
	header.Set(HeaderSignature, Sign(h.Secret, body))
	return body, header, nil
}

// Verify reports whether signature (the X-Eddy-Signature header) is
// body's signature with secret, in constant time: the check a Go receiver
// makes (docs/webhooks.md).
func Verify(secret string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}

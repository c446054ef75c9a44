package pusher

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// The examples of Pusher's protocol documentation (HTTP API signing and
// private channel auth), so Eddy signs exactly as the SDKs do.
const (
	docKey    = "278d425bdf160c739803"
	docSecret = "7ad3773142a6692b25b8"
)

func TestRequestSignatureMatchesPusherDocs(t *testing.T) {
	q := url.Values{
		"auth_key":       {docKey},
		"auth_timestamp": {"1353088179"},
		"auth_version":   {"1.0"},
		"body_md5":       {"ec365a775a4cd0599faeb73354201b6f"},
	}
	sts := StringToSign("POST", "/apps/3/events", q)
	if want := "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"; sts != want {
		t.Fatalf("string to sign %q", sts)
	}
	if got := HMAC(docSecret, sts); got != "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c" {
		t.Fatalf("signature %s", got)
	}
}

func TestChannelAuthMatchesPusherDocs(t *testing.T) {
	if got := ChannelAuth(docKey, docSecret, "1234.1234", "private-foobar", ""); got != docKey+":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4" {
		t.Fatalf("auth %s", got)
	}
}

func TestVerifyRequestNamesWhatFailed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"name":"e","channel":"c","data":"x"}`)
	creds := func(k string) (string, bool) { return "sec", k == "key" }
	sign := func(key, secret string, at time.Time) url.Values {
		q := url.Values{}
		SignRequest(key, secret, "POST", "/apps/1/events", q, body, at)
		return q
	}
	if _, err := VerifyRequest("POST", "/apps/1/events", sign("key", "sec", now), body, now, creds); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		q    url.Values
		body []byte
		want string
	}{
		"bad secret":   {sign("key", "other", now), body, "auth_signature"},
		"unknown key":  {sign("nokey", "sec", now), body, "auth_key"},
		"stale":        {sign("key", "sec", now.Add(-11*time.Minute)), body, "auth_timestamp"},
		"future":       {sign("key", "sec", now.Add(11*time.Minute)), body, "auth_timestamp"},
		"body changed": {sign("key", "sec", now), []byte(`{}`), "body_md5"},
		"no key":       {url.Values{}, body, "auth_key is missing"},
	} {
		_, err := VerifyRequest("POST", "/apps/1/events", tc.q, tc.body, now, creds)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to name %s", name, err, tc.want)
		}
	}
	q := sign("key", "sec", now)
	q.Set("auth_version", "2.0")
	if _, err := VerifyRequest("POST", "/apps/1/events", q, body, now, creds); err == nil || !strings.Contains(err.Error(), "auth_version") {
		t.Errorf("auth_version 2.0: %v", err)
	}
}

func TestKindAndNames(t *testing.T) {
	for name, want := range map[string]Kind{
		"news":                      {},
		"cache-news":                {Cache: true},
		"private-x":                 {Private: true},
		"private-cache-x":           {Private: true, Cache: true},
		"private-encrypted-x":       {Private: true, Encrypted: true},
		"private-encrypted-cache-x": {Private: true, Encrypted: true, Cache: true},
		"presence-x":                {Private: true, Presence: true},
		"presence-cache-x":          {Private: true, Presence: true, Cache: true},
	} {
		if got := KindOf(name); got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
	for _, ok := range []string{"a", "presence-room.1", "x_y-z=@."} {
		if err := ValidateChannel(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{"": "empty", "a,b": "Eddy channel names do not", "a:b": "invalid character", strings.Repeat("a", 165): "limit"} {
		if err := ValidateChannel(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestAppendEventData(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{`"already a string"`, `{"event":"e","channel":"c","data":"already a string"}`},
		{`{"a":1}`, `{"event":"e","channel":"c","data":"{\"a\":1}"}`},
		{``, `{"event":"e","channel":"c","data":""}`},
	} {
		if got := string(AppendEvent(nil, "e", "c", []byte(tc.data), "")); got != tc.want {
			t.Errorf("%s: %s", tc.data, got)
		}
	}
	if got := string(AppendClientEvent(nil, "client-x", "c", []byte(`{"a":1}`), "u")); got != `{"event":"client-x","channel":"c","data":{"a":1},"user_id":"u"}` {
		t.Error(got)
	}
	if id, ok := UserIDString([]byte(`42`)); !ok || id != "42" {
		t.Error(id)
	}
}

package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/auth"
)

const testSecret = "forum-test-secret-0123456789abcdef0123"

// fakeEddy records what the forum publishes.
type fakeEddy struct {
	mu        sync.Mutex
	published []api.PublishRequest
}

func (f *fakeEddy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/publish" || r.Header.Get("Authorization") != "Bearer key" {
		http.Error(w, "unexpected", http.StatusNotFound)
		return
	}
	var req api.PublishRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	f.published = append(f.published, req)
	f.mu.Unlock()
	_, _ = io.WriteString(w, `{"id":"m1"}`)
}

func newTestForum(t *testing.T) (*httptest.Server, *fakeEddy, *http.Client) {
	t.Helper()
	fe := &fakeEddy{}
	eddy := httptest.NewServer(fe)
	t.Cleanup(eddy.Close)
	a, err := newApp(appConfig{EddyURL: eddy.URL, Secret: []byte(testSecret), API: api.NewClient(eddy.URL, "key"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.routes())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return srv, fe, &http.Client{Jar: jar}
}

func TestPostPublishesToEddy(t *testing.T) {
	srv, fe, c := newTestForum(t)
	// Not logged in: no token, no posting.
	res, _ := c.Get(srv.URL + "/eddy-token")
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("token without login: %d", res.StatusCode)
	}
	res, _ = c.PostForm(srv.URL+"/login", url.Values{"name": {"ann"}, "next": {"/t/dogs"}})
	res.Body.Close()
	if res.Request.URL.Path != "/t/dogs" {
		t.Fatalf("login redirected to %s", res.Request.URL)
	}

	res, _ = c.Get(srv.URL + "/eddy-token")
	var tok struct{ Token string }
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	id, err := auth.NewVerifier([]byte(testSecret), nil).Verify(tok.Token)
	if err != nil || id.User != "ann" || !id.CanSubscribe("forum:dogs") || id.CanSubscribe("chat:x") || id.CanPublish("forum:dogs") {
		t.Fatalf("token identity %+v %v", id, err)
	}

	req, _ := http.NewRequest("POST", srv.URL+"/t/dogs/posts", strings.NewReader("text=hello+dogs"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Post Post
		Live bool
	}
	_ = json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || !out.Live || out.Post.Author != "ann" || out.Post.Text != "hello dogs" {
		t.Fatalf("post: %d %+v", res.StatusCode, out)
	}
	if len(fe.published) != 1 || fe.published[0].Channel != "forum:dogs" || fe.published[0].Event != "post" || !strings.Contains(string(fe.published[0].Data), `"text":"hello dogs"`) {
		t.Fatalf("published %+v", fe.published)
	}

	res, _ = c.Get(srv.URL + "/t/dogs")
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), "hello dogs") || !strings.Contains(string(page), `/eddy.js"></script>`) {
		t.Fatalf("topic page lacks the post or the eddy script:\n%s", page)
	}
}

func TestForgedCookieIsRefused(t *testing.T) {
	srv, _, c := newTestForum(t)
	u, _ := url.Parse(srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: "YWRtaW4.Zm9yZ2Vk"}})
	res, _ := c.Get(srv.URL + "/eddy-token")
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged cookie accepted: %d", res.StatusCode)
	}
}

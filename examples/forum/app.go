package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/eddyrt/eddy/api"
	"github.com/eddyrt/eddy/internal/auth"
)

//go:embed page.html forum.js forum.css
var files embed.FS

const (
	cookieName  = "forum_user"
	tokenTTL    = time.Hour
	maxPostLen  = 2000
	maxNameLen  = 32
	publishWait = 5 * time.Second
)

var (
	topicRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	defaultTopics = []string{"general", "dogs", "golang"}
)

// Post is one forum post; it is also the data of the "post" event on
// forum:<topic>.
type Post struct {
	ID     int    `json:"id"`
	Topic  string `json:"topic"`
	Author string `json:"author"`
	Text   string `json:"text"`
	TS     int64  `json:"ts"` // unix ms
}

type appConfig struct {
	EddyURL string // base URL of the Eddy server, for /eddy.js and /ws
	Secret  []byte // Eddy's token secret
	API     *api.Client
	Log     *slog.Logger
}

type app struct {
	appConfig
	cookieKey []byte
	tmpl      *template.Template

	mu     sync.Mutex
	posts  map[string][]Post // topic -> posts, oldest first
	nextID int
}

func newApp(c appConfig) (*app, error) {
	tmpl, err := template.ParseFS(files, "page.html")
	if err != nil {
		return nil, err
	}
	// The session cookie is signed with a key derived from the secret, so
	// the forum needs no key of its own and the Eddy secret never signs cookies.
	m := hmac.New(sha256.New, c.Secret)
	m.Write([]byte("forum session cookie"))
	return &app{appConfig: c, cookieKey: m.Sum(nil), tmpl: tmpl, posts: map[string][]Post{}}, nil
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /t/{topic}", a.topic)
	mux.HandleFunc("POST /t/{topic}/posts", a.newPost)
	mux.HandleFunc("GET /eddy-token", a.eddyToken)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	return mux
}

// ---- sessions ----

func (a *app) sign(name string) string {
	m := hmac.New(sha256.New, a.cookieKey)
	m.Write([]byte(name))
	return base64.RawURLEncoding.EncodeToString([]byte(name)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// user returns the logged-in user's name, or "".
func (a *app) user(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	enc, _, ok := strings.Cut(c.Value, ".")
	if !ok {
		return ""
	}
	name, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || !hmac.Equal([]byte(a.sign(string(name))), []byte(c.Value)) {
		return ""
	}
	return string(name)
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.FormValue("name"))
	if name == "" || utf8.RuneCountInString(name) > maxNameLen || !utf8.ValidString(name) {
		http.Error(w, "a name is 1-32 characters", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: a.sign(name), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, safeNext(r.FormValue("next")), http.StatusSeeOther)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// safeNext keeps redirects on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/t/") || strings.ContainsAny(next, "\\") {
		return "/"
	}
	return next
}

// eddyToken gives the logged-in user an Eddy token that may subscribe to
// forum:* and publish nowhere: posts go through the forum's own POST.
func (a *app) eddyToken(w http.ResponseWriter, r *http.Request) {
	name := a.user(r)
	if name == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "unauthorized", "message": "log in first"}})
		return
	}
	info, _ := json.Marshal(map[string]string{"name": name})
	tok, err := auth.Mint(a.Secret, auth.TokenSpec{Subject: name, TTL: tokenTTL, Channels: []string{"forum:*"}, Info: info})
	if err != nil {
		a.Log.Error("mint token", "err", err)
		http.Error(w, "cannot sign a token", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires_in": int(tokenTTL / time.Second)})
}

// ---- pages ----

type topicInfo struct {
	Name  string
	Posts int
}

type pageData struct {
	User    string
	Topic   string
	Topics  []topicInfo
	Posts   []Post
	EddyURL string
	WSURL   string
}

func (a *app) render(w http.ResponseWriter, d pageData) {
	d.EddyURL = a.EddyURL
	d.WSURL = "ws" + strings.TrimPrefix(a.EddyURL, "http") + "/ws"
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := a.tmpl.ExecuteTemplate(w, "page.html", d); err != nil {
		a.Log.Error("render", "err", err)
	}
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	names := slices.Clone(defaultTopics)
	var extra []string
	for t := range a.posts {
		if !slices.Contains(names, t) {
			extra = append(extra, t)
		}
	}
	slices.Sort(extra)
	var topics []topicInfo
	for _, t := range append(names, extra...) {
		topics = append(topics, topicInfo{Name: t, Posts: len(a.posts[t])})
	}
	a.mu.Unlock()
	a.render(w, pageData{User: a.user(r), Topics: topics})
}

func (a *app) topic(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if !topicRE.MatchString(topic) {
		http.Error(w, "a topic is 1-40 lower-case letters, digits and -", http.StatusNotFound)
		return
	}
	a.mu.Lock()
	posts := slices.Clone(a.posts[topic])
	a.mu.Unlock()
	a.render(w, pageData{User: a.user(r), Topic: topic, Posts: posts})
}

// newPost stores a post and publishes it to forum:<topic>. A form post is
// redirected back to the topic; a fetch (Accept: application/json) gets
// the post as JSON.
func (a *app) newPost(w http.ResponseWriter, r *http.Request) {
	wantsJSON := strings.Contains(r.Header.Get("Accept"), "application/json")
	fail := func(status int, msg string) {
		if wantsJSON {
			writeJSON(w, status, map[string]any{"error": map[string]string{"message": msg}})
			return
		}
		http.Error(w, msg, status)
	}
	name := a.user(r)
	if name == "" {
		fail(http.StatusUnauthorized, "log in first")
		return
	}
	topic := r.PathValue("topic")
	if !topicRE.MatchString(topic) {
		fail(http.StatusNotFound, "no such topic")
		return
	}
	text := strings.TrimSpace(r.FormValue("text"))
	if text == "" || utf8.RuneCountInString(text) > maxPostLen {
		fail(http.StatusBadRequest, "a post is 1-"+strconv.Itoa(maxPostLen)+" characters")
		return
	}
	a.mu.Lock()
	a.nextID++
	p := Post{ID: a.nextID, Topic: topic, Author: name, Text: text, TS: time.Now().UnixMilli()}
	a.posts[topic] = append(a.posts[topic], p)
	a.mu.Unlock()

	// The post is stored either way; without Eddy, others see it on reload.
	live := true
	ctx, cancel := context.WithTimeout(r.Context(), publishWait)
	defer cancel()
	if _, err := a.API.Publish(ctx, "forum:"+topic, "post", p); err != nil {
		live = false
		a.Log.Warn("publish to eddy", "topic", topic, "err", err)
	}
	if wantsJSON {
		writeJSON(w, http.StatusCreated, map[string]any{"post": p, "live": live})
		return
	}
	http.Redirect(w, r, "/t/"+topic, http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Package templates holds the starting points `eddy functions new NAME
// --template T` writes: a ready function and a test message for `eddy
// functions test`. Each template is exercised by the tests through
// `functions test` and through a deploy to a real server.
package templates

import (
	"embed"
	"fmt"
	"slices"
	"strings"
)

//go:embed files
var files embed.FS

// Template is one starting point.
type Template struct {
	Name string
	// Source is the function (an ES module in JavaScript); Message is a
	// test message: {"channel", "event", "data"}.
	Source, Message []byte
	// Deploy is the deploy command line to suggest, with NAME for the
	// function's name and FILE for its file.
	Deploy string
}

// deploy hints: the flags a template needs beyond the file.
var deploy = map[string]string{
	"filter":    "eddy functions deploy NAME FILE --env WORDS=darn,heck",
	"enricher":  "eddy functions deploy NAME FILE",
	"bot":       "eddy functions deploy NAME FILE",
	"counter":   "eddy functions deploy NAME FILE",
	"translate": "eddy functions secrets set TRANSLATE_KEY && eddy functions deploy NAME FILE --env TRANSLATE_URL=https://translate.example.com/v1 --allow-host translate.example.com",
	"http":      "eddy functions deploy NAME FILE --env WEBHOOK_URL=https://hooks.example.com/eddy --allow-host hooks.example.com",
}

// Names lists the templates.
func Names() []string {
	var out []string
	for n := range deploy {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Get returns the template called name.
func Get(name string) (Template, error) {
	if _, ok := deploy[name]; !ok {
		return Template{}, fmt.Errorf("no template %q (want one of %s)", name, strings.Join(Names(), ", "))
	}
	src, err := files.ReadFile("files/" + name + ".js")
	if err != nil {
		return Template{}, err
	}
	msg, err := files.ReadFile("files/" + name + ".test.json")
	if err != nil {
		return Template{}, err
	}
	return Template{Name: name, Source: src, Message: msg, Deploy: deploy[name]}, nil
}

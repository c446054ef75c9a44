package config

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// channelOptionDocs describes each channel option, in the order the
// reference lists them. A test checks it covers every field of ChannelOptions.
var channelOptionDocs = []struct{ key, def, help string }{
	{"history_size", "0", "messages kept per channel for history and recovery (0: none; at most 1,000,000)"},
	{"history_ttl", "0s", "how long kept messages live (0: until pushed out by history_size)"},
	{"presence", "false", "track who is subscribed (the presence request, members in subscribed)"},
	{"join_leave", "false", "send join and leave events to subscribers (needs presence: true)"},
}

// Reference renders docs/configuration.md from the settings table, so the
// document cannot drift from the code: a test compares the two.
func Reference() string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated from internal/config by ` + "`go test ./internal/config -run TestConfigurationReference -update`" + `: do not edit by hand. -->

Every setting is a key in the config file (` + "`eddy.yaml`" + `), a flag of ` + "`eddy serve`" + ` and an
environment variable, named alike: key ` + "`auth_timeout`" + ` is flag ` + "`--auth-timeout`" + ` and variable
` + "`EDDY_AUTH_TIMEOUT`" + `. A flag beats the variable, the variable beats the file, the file
beats the default. Lists take repeated flags or comma-separated values
(` + "`EDDY_REDIS=redis://a:6379,redis://b:6379`" + `). Durations are written like ` + "`15s`" + `,
` + "`500ms`" + `, ` + "`2m`" + ` or ` + "`1h30m`" + `. An unknown key or a bad value stops startup with a message
that names it.

## Settings

| key | default | flag | variable | meaning |
|---|---|---|---|---|
`)
	for _, s := range settings {
		fmt.Fprintf(&b, "| `%s` | %s | `--%s` | `%s` | %s |\n", s.key, defaultText(s.def), flagName(s.key), EnvName(s.key), escapePipes(s.help))
	}
	b.WriteString(`
## Channel options

Channels are configured per **namespace**, the part of a channel name before
the first ` + "`:`" + ` (` + "`chat`" + ` in ` + "`chat:lobby`" + `). ` + "`channel_defaults`" + ` applies to channels whose
namespace is not listed under ` + "`namespaces`" + `, and to channels without a namespace.
These are set in the config file only:

` + "```yaml" + `
channel_defaults: { history_size: 0 }
namespaces:
  chat: { history_size: 100, history_ttl: 10m, presence: true, join_leave: true }
  feed: { history_size: 1000, history_ttl: 1h }
` + "```" + `

| option | default | meaning |
|---|---|---|
`)
	for _, o := range channelOptionDocs {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", o.key, o.def, escapePipes(o.help))
	}
	return b.String()
}

func defaultText(def any) string {
	switch d := def.(type) {
	case string:
		if d == "" {
			return "(empty)"
		}
		return "`" + d + "`"
	case []string:
		if len(d) == 0 {
			return "(none)"
		}
		return "`" + strings.Join(d, ",") + "`"
	case jsonList:
		return "(none)"
	case time.Duration:
		return "`" + d.String() + "`"
	case float64:
		return fmt.Sprintf("`%g`", d)
	default:
		return fmt.Sprintf("`%v`", d)
	}
}

func escapePipes(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// channelOptionKeyList is the channel option keys, sorted (for tests).
func channelOptionKeyList() []string {
	keys := make([]string, 0, len(channelOptionKeys))
	for k := range channelOptionKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

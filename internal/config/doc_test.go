package config

import (
	"flag"
	"os"
	"reflect"
	"sort"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the settings table")

// docs/configuration.md is generated from the settings table; this fails
// when someone adds a setting without regenerating it (run with -update).
func TestConfigurationReference(t *testing.T) {
	const path = "../../docs/configuration.md"
	want := Reference()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date: run go test ./internal/config -run TestConfigurationReference -update", path)
	}
}

// Every field of ChannelOptions is documented, and nothing else.
func TestChannelOptionDocsCoverTheStruct(t *testing.T) {
	var fields []string
	ty := reflect.TypeOf(ChannelOptions{})
	for i := 0; i < ty.NumField(); i++ {
		fields = append(fields, ty.Field(i).Tag.Get("koanf"))
	}
	var documented []string
	for _, o := range channelOptionDocs {
		documented = append(documented, o.key)
	}
	sort.Strings(fields)
	sort.Strings(documented)
	if !reflect.DeepEqual(fields, documented) || !reflect.DeepEqual(fields, channelOptionKeyList()) {
		t.Fatalf("channel options: struct %v, documented %v, accepted %v", fields, documented, channelOptionKeyList())
	}
}

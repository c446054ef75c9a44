package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckPublishDedupesChannels(t *testing.T) {
	channels, _, err := CheckPublish([]string{"a", "b", "a", "c", "b"}, "e", json.RawMessage(`1`), 100)
	if err != nil || strings.Join(channels, ",") != "a,b,c" {
		t.Fatalf("%v %v", channels, err)
	}
	in := []string{"a", "b"}
	if out, _, _ := CheckPublish(in, "e", nil, 100); &out[0] != &in[0] {
		t.Fatal("channels without repeats were copied")
	}
}

package testenv

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestServersStart(t *testing.T) {
	js := StartJetStream(t)
	nc, err := nats.Connect(js.URL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	r := StartRedis(t)
	if err := r.Client(t).Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("redis set: %v", err)
	}
	if n := r.Calls(t, "set"); n != 1 {
		t.Fatalf("Calls(set) = %d, want 1", n)
	}
}

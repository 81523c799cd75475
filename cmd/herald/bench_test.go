package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/heraldhq/herald/bench"
)

// asHeraldEnv makes the test binary run herald's main: herald bench starts
// its children from its own executable, which under go test is this binary.
const asHeraldEnv = "GO_TEST_RUN_HERALD_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asHeraldEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestBench(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("nats-server"); err != nil {
		t.Skip("nats-server is not on PATH")
	}
	var out, errOut bytes.Buffer
	environ := append(os.Environ(), asHeraldEnv+"=1")
	err := run(t.Context(), []string{"bench", "--jobs", "500", "--concurrency", "64", "--dead-letter-ratio", "0.1", "--json"},
		environ, strings.NewReader(""), &out, &errOut)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errOut.String())
	}
	var res bench.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("decode %q: %v", out.String(), err)
	}
	if res.Ratio <= 0 || res.Bare.JobsPerSec <= 0 || res.Herald.JobsPerSec <= 0 {
		t.Errorf("ratio %v, bare %v jobs/s, herald %v jobs/s: want all positive", res.Ratio, res.Bare.JobsPerSec, res.Herald.JobsPerSec)
	}
	// One job in ten is refused by the platform: the bare consumer acks it
	// anyway, herald dead-letters it; neither is delivered.
	for name, f := range map[string]bench.Figures{"bare": res.Bare, "herald": res.Herald} {
		if f.Delivered != 450 {
			t.Errorf("%s delivered %d, want 450", name, f.Delivered)
		}
		if f.PeakRSSMiB <= 0 || f.CPUSeconds <= 0 || f.NATSCPUSeconds <= 0 || f.LatencyP50Ms <= 0 {
			t.Errorf("%s figures missing: %+v", name, f)
		}
	}
	if res.Herald.RedisPerJob < 2 || res.Herald.RedisPerJob > 4 {
		t.Errorf("herald Redis commands per delivered job = %v, want about 2 (Admit, MarkSent) plus the dead letters' Forget", res.Herald.RedisPerJob)
	}
	if !strings.Contains(errOut.String(), "bench: herald:") {
		t.Errorf("no progress on stderr:\n%s", errOut.String())
	}
}

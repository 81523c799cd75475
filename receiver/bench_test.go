package receiver_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/providers/wechat/push"
	"github.com/heraldhq/herald/receiver"
)

// BenchmarkSafeModePush measures one safe-mode push end to end: an HTTP
// request over loopback to the receiver, which checks both signatures,
// decrypts, parses, publishes the event to a file-backed JetStream stream
// and waits for its acknowledgement before answering. "serial" sends one
// push at a time (latency); "parallel" keeps 16 in flight (what one
// receiver handles). Every push is a different event, so none is a
// duplicate. cpu-µs/push is the process's user and system time per push:
// the receiver, the embedded JetStream server and the HTTP client
// together, so an upper bound for the receiver alone.
func BenchmarkSafeModePush(b *testing.B) {
	for _, bc := range []struct {
		name     string
		inFlight int
	}{{"serial", 1}, {"parallel", 16}} {
		b.Run(bc.name, func(b *testing.B) {
			tb := setup(b, receiver.Config{})
			s := sealer(b, safeApp, push.ModeSafe, push.FormatXML)
			type sealed struct {
				url  string
				body []byte
			}
			now := time.Now()
			pushes := make([]sealed, b.N)
			for i := range pushes {
				m := popupMessage(now)
				m.FromUserName = fmt.Sprintf("oBench%012d", i)
				m.Items = m.Items[:1]
				q, body, err := s.Seal(m, now)
				if err != nil {
					b.Fatal(err)
				}
				pushes[i] = sealed{tb.http.URL + receiver.DefaultWeChatPrefix + safeApp + "?" + q.Encode(), body}
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: bc.inFlight}}
			defer client.CloseIdleConnections()
			send := func(p sealed) error {
				resp, err := client.Post(p.url, "text/xml", bytes.NewReader(p.body))
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("answer %d", resp.StatusCode)
				}
				return nil
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0, start := processCPU(), time.Now()
			b.ResetTimer()
			for range bc.inFlight {
				wg.Go(func() {
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						if err := send(pushes[i]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			elapsed, cpu := time.Since(start), processCPU()-cpu0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pushes/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/push")
			}
			if n := tb.count(b); n != uint64(b.N) {
				b.Fatalf("stream holds %d events, want %d", n, b.N)
			}
		})
	}
}

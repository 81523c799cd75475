package bench

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/producer/job"
)

// refusePrefix makes the sandbox answer 43101 (user refused), which herald
// dead-letters at once.
const refusePrefix = "refuse"

// benchTemplate is every bench job's template_id, the one a rate-limit run
// limits.
const benchTemplate = "bench-template"

// makeJob encodes job seq, id tag-seq, published at pub, padded with
// template keywords to about payload bytes. The publish time travels in
// to_user, which the sandbox records with the time it accepted the send.
func makeJob(tag string, seq int, pub time.Time, refuse bool, payload int) ([]byte, error) {
	to := "u" + strconv.Itoa(seq) + "-" + strconv.FormatInt(pub.UnixMicro(), 10)
	if refuse {
		to = refusePrefix + to
	}
	j := job.Job{
		ID:         tag + "-" + strconv.Itoa(seq),
		Platform:   job.WeChat,
		App:        job.DefaultApp,
		TemplateID: benchTemplate,
		ToUser:     to,
		Page:       "pages/order/detail",
		Data:       map[string]job.Value{"thing1": {Value: "benchmark"}},
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	// Each thing keyword holds at most 20 characters and costs about 17
	// bytes of JSON around its value.
	const overhead = len(`,"thing99":{"value":""}`)
	for k := 2; len(b) < payload; k++ {
		n := min(20, max(1, payload-len(b)-overhead))
		j.Data["thing"+strconv.Itoa(k)] = job.Value{Value: strings.Repeat("x", n)}
		if b, err = json.Marshal(j); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// publishedAt recovers the publish time from a recorded to_user.
func publishedAt(toUser string) (time.Time, bool) {
	i := strings.LastIndexByte(toUser, '-')
	if i < 0 {
		return time.Time{}, false
	}
	us, err := strconv.ParseInt(toUser[i+1:], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(us), true
}

// refused reports whether job seq of n is one of the dead letters: they are
// spread evenly, ratio of all jobs.
func refused(seq int, ratio float64) bool {
	if ratio <= 0 {
		return false
	}
	return int(float64(seq+1)*ratio) > int(float64(seq)*ratio)
}

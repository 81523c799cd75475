package alipay

import (
	"fmt"
	"strings"
	"testing"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

func TestValidate(t *testing.T) {
	c := clientFor(t, "http://unused/gateway.do", nil)
	with := func(f func(j *job.Job)) job.Job {
		j := testJob("user-1")
		f(&j)
		return j
	}
	manyKeywords := func(j *job.Job) {
		// 40 keywords of 50 characters: each value is fine, the data
		// string is not.
		for i := range 40 {
			j.Data[fmt.Sprintf("keyword%d", i+3)] = job.Value{Value: strings.Repeat("x", 50)}
		}
	}
	tests := []struct {
		name       string
		give       job.Job
		wantReason string // "" for valid
		wantField  string
	}{
		{"valid", testJob("user-1"), "", ""},
		{"50 Chinese characters", with(func(j *job.Job) { j.Data["keyword1"] = job.Value{Value: strings.Repeat("长", 50)} }), "", ""},
		{"51 characters", with(func(j *job.Job) { j.Data["keyword2"] = job.Value{Value: strings.Repeat("长", 51)} }),
			job.ReasonInvalidTemplateData, "data.keyword2.value"},
		{"empty value", with(func(j *job.Job) { j.Data["keyword1"] = job.Value{} }),
			job.ReasonInvalidTemplateData, "data.keyword1.value"},
		{"smallest bad keyword reported", with(func(j *job.Job) {
			j.Data["b"] = job.Value{}
			j.Data["a"] = job.Value{Value: strings.Repeat("x", 51)}
		}), job.ReasonInvalidTemplateData, "data.a.value"},
		{"data over 2048 bytes", with(manyKeywords), job.ReasonInvalidTemplateData, "data"},
		{"page of 128 characters", with(func(j *job.Job) { j.Page = strings.Repeat("页", 128) }), "", ""},
		{"page over 128 characters", with(func(j *job.Job) { j.Page = strings.Repeat("p", 129) }), job.ReasonInvalidPage, "page"},
		{"template id over 64", with(func(j *job.Job) { j.TemplateID = strings.Repeat("t", 65) }), job.ReasonInvalidTemplate, "template_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Validate(tt.give)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			d := retry.Decide(err)
			if d.Action != retry.DeadLetter || d.Reason != tt.wantReason || d.Detail.Field != tt.wantField || d.Detail.Code != "" {
				t.Fatalf("Validate = %v: %+v, want %s with field %s", err, d, tt.wantReason, tt.wantField)
			}
			if !strings.HasPrefix(err.Error(), "alipay validate "+tt.give.TemplateID+": ") {
				t.Fatalf("error %q is not wrapped", err)
			}
		})
	}
}

// TestValidateMatchesTheSandbox: what Validate lets through about length,
// the sandbox (which enforces Alipay's limits) accepts; what it rejects,
// the sandbox rejects too.
func TestValidateMatchesTheSandbox(t *testing.T) {
	b := setup(t, nil)
	for _, n := range []int{1, 50, 51} {
		j := testJob(fmt.Sprintf("user-%d", n))
		j.Data["keyword1"] = job.Value{Value: strings.Repeat("长", n)}
		local := b.client.Validate(j)
		_, remote := b.client.Send(t.Context(), j)
		if (local == nil) != (remote == nil) {
			t.Errorf("%d characters: Validate %v, sandbox %v", n, local, remote)
		}
	}
}

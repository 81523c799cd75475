package alipay

import (
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/retry"
)

// Documented limits (platform-apis B.2).
const (
	// MaxValueChars is the longest keyword value, in characters (runes);
	// Alipay answers USER_KEYWORD_LENGTH_ERROR beyond it.
	MaxValueChars = 50
	// MaxDataBytes is the longest data string, as sent.
	MaxDataBytes = 2048
	// MaxPageChars is the longest page.
	MaxPageChars = 128
	// MaxTemplateIDChars is the longest user_template_id.
	MaxTemplateIDChars = 64
)

// Validate checks the job against Alipay's documented limits without a
// call, so a message Alipay would certainly reject is dead-lettered
// without spending quota: an empty keyword value or one over
// [MaxValueChars] runes, and a data string over [MaxDataBytes] bytes, are
// invalid_template_data with the field (data.<keyword>.value, or data); a
// page over [MaxPageChars] characters is invalid_page; a template id over
// [MaxTemplateIDChars] is invalid_template. When several values break a
// rule, the smallest keyword is reported.
func (c *Client) Validate(j job.Job) error { return ValidateJob(j) }

// ValidateJob is [Client.Validate] without a client: herald send checks
// jobs with it before publishing them.
func ValidateJob(j job.Job) error {
	if err := validate(j); err != nil {
		return fmt.Errorf("alipay validate %s: %w", j.TemplateID, err)
	}
	return nil
}

func validate(j job.Job) error {
	keys := make([]string, 0, len(j.Data))
	for k := range j.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := j.Data[k].Value
		field := "data." + k + ".value"
		switch n := utf8.RuneCountInString(v); {
		case v == "":
			return retry.Permanent(job.ReasonInvalidTemplateData,
				&ValueError{Field: field, Message: field + " is empty"})
		case n > MaxValueChars:
			return retry.Permanent(job.ReasonInvalidTemplateData,
				&ValueError{Field: field, Message: fmt.Sprintf("%s has %d characters, Alipay allows %d", field, n, MaxValueChars)})
		}
	}
	data, err := encodeData(j.Data)
	if err != nil {
		return retry.Permanent(job.ReasonInvalidTemplateData, &ValueError{Field: "data", Message: "data: " + err.Error()})
	}
	if len(data) > MaxDataBytes {
		return retry.Permanent(job.ReasonInvalidTemplateData,
			&ValueError{Field: "data", Message: fmt.Sprintf("data is %d bytes as sent, Alipay allows %d", len(data), MaxDataBytes)})
	}
	if n := utf8.RuneCountInString(j.Page); n > MaxPageChars {
		return retry.Permanent(job.ReasonInvalidPage,
			&ValueError{Field: "page", Message: fmt.Sprintf("page has %d characters, Alipay allows %d", n, MaxPageChars)})
	}
	if n := utf8.RuneCountInString(j.TemplateID); n > MaxTemplateIDChars {
		return retry.Permanent(job.ReasonInvalidTemplate,
			&ValueError{Field: "template_id", Message: fmt.Sprintf("template_id has %d characters, Alipay allows %d", n, MaxTemplateIDChars)})
	}
	return nil
}

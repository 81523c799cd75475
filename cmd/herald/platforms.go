package main

import (
	"fmt"

	"github.com/heraldhq/herald/producer/job"
	"github.com/heraldhq/herald/providers/alipay"
	"github.com/heraldhq/herald/providers/wechat"
	"github.com/heraldhq/herald/retry"
)

// jobChecks are the checks each platform's worker makes before a call,
// which herald send makes before publishing: a job that would only be
// dead-lettered is refused at the door.
var jobChecks = map[string]func(job.Job) error{
	job.WeChat: wechat.ValidateJob,
	job.Alipay: alipay.ValidateJob,
}

// checkJob reports why the worker would dead-letter j without a call, or
// nil.
func checkJob(j job.Job) error {
	check, ok := jobChecks[j.Platform]
	if !ok {
		return nil
	}
	if err := check(j); err != nil {
		dec := retry.Decide(err)
		msg := dec.Detail.Message
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("the worker would dead-letter it as %s: %s", dec.Reason, msg)
	}
	return nil
}

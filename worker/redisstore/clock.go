package redisstore

import (
	"sync"
	"time"
)

// A rate-limit slot is reserved on Redis's clock: the batch script reads
// TIME once and answers each admitted job with its wait from then. The
// worker learns it a round trip later, and under load that round trip
// varies by tens of milliseconds from one batch to the next. Counted from
// the reply's arrival, a wait makes every job of a slow batch late by the
// batch's delay, and late sends land in the same second as on-time ones
// from a faster batch: the busiest second then holds more than limit +
// burst. So the store works out when, on the local clock, Redis ran each
// batch, and the wait counts from then.
//
// clockOffset estimates Redis's clock minus the local one. Every round trip
// bounds it: Redis read its clock after the batch was sent and before its
// reply arrived. The estimate is the middle of the intersection of the
// bounds of the last few seconds' round trips, so one quick round trip
// pins it for the slow ones around it. Seconds age out, which follows a
// drifting clock; bounds that do not intersect (a clock was stepped) start
// the estimate again from the current round trip.
type clockOffset struct {
	mu   sync.Mutex
	secs [offsetSeconds]offsetBounds // by local Unix second, modulo the size
}

// offsetSeconds is how many seconds of round trips the estimate keeps.
const offsetSeconds = 10

type offsetBounds struct {
	sec    int64 // the local Unix second of these round trips; 0 for none
	lo, hi int64 // Redis minus local, µs
}

// ranAt records a round trip, sent and received at local times sent and
// recv, in which Redis read redisNow (µs since the epoch on its clock),
// and returns the local time at which Redis read it: always within
// [sent, recv], and with recv's monotonic reading.
func (c *clockOffset) ranAt(redisNow int64, sent, recv time.Time) time.Time {
	lo, hi := redisNow-recv.UnixMicro(), redisNow-sent.UnixMicro()
	sec := recv.Unix()
	c.mu.Lock()
	if b := &c.secs[sec%offsetSeconds]; b.sec == sec {
		b.lo, b.hi = max(b.lo, lo), min(b.hi, hi)
	} else {
		*b = offsetBounds{sec: sec, lo: lo, hi: hi}
	}
	elo, ehi := lo, hi
	for _, b := range c.secs {
		if b.sec > sec-offsetSeconds && b.sec <= sec {
			elo, ehi = max(elo, b.lo), min(ehi, b.hi)
		}
	}
	if elo > ehi {
		c.secs = [offsetSeconds]offsetBounds{}
		c.secs[sec%offsetSeconds] = offsetBounds{sec: sec, lo: lo, hi: hi}
		elo, ehi = lo, hi
	}
	c.mu.Unlock()
	offset := elo + (ehi-elo)/2
	// The offset lies within this round trip's bounds, so the reading maps
	// into [sent, recv]; the clamp holds it there should the local wall
	// clock have been stepped during the round trip.
	since := time.Duration(recv.UnixMicro()-(redisNow-offset)) * time.Microsecond
	return recv.Add(-min(max(since, 0), recv.Sub(sent)))
}

// Package receiver serves the platforms' subscription push URLs: it
// verifies each push, turns its items into [job.SubscriptionEvent] values,
// stores them in JetStream and only then answers. herald receiver runs it;
// it is stateless, so any number of replicas may share one JetStream.
//
// A [Platform] knows one platform's protocol: WeChat's is [NewWeChat]
// (package providers/wechat/push does the cryptography and the parsing).
// The [Server] mounts each platform under its path prefix, one URL per app,
// and does what every platform shares: the body limit, the deadline, the
// answers, publishing and the metrics. Another platform is one more
// Platform implementation, in a file of its own, and one more entry in the
// list given to [New].
//
// # Answers
//
//   - 200 with the platform's answer ("success" for a WeChat push, the
//     echostr for a URL check) only after JetStream acknowledged every
//     event of the push. A push herald does not handle (another message
//     type or event) is answered 200 too, stores nothing and is counted.
//   - 401 when the push is not authenticated, 400 when it cannot be
//     parsed or is over the body limit, 404 for an app the platform does
//     not serve, 405 for a method other than GET and POST, 503 when an
//     event could not be stored: the platform then retries the push.
//   - Nothing is published on any answer but 200, except the events of a
//     push that failed half-way through storing; the platform's retry
//     stores the rest, and each event's Nats-Msg-Id
//     ([job.SubscriptionEvent.DedupID]) keeps what was already stored
//     from being stored twice.
//
// # Invariants
//
//   - A platform authenticates what it can from the query before the body
//     is read, and the body is read through a limit ([Config].MaxBody).
//   - The whole handling of a request, reading and publishing included,
//     ends within [Config].Deadline, well inside WeChat's 5 seconds.
//   - Every event is published with WithExpectStream, so an event is
//     acknowledged only by the configured stream.
//   - Metric labels come from the configuration and fixed lists (platform,
//     app, answer code, refusal reason, event kind), never from a push.
//     Refusal and store-failure logs are sampled, so a flood of forged
//     pushes cannot flood the log either.
package receiver

// Package console is herald's web console for operators: the dead letters
// (counts by reason, platform, app and template as a chart and tables, a
// filtered list, one letter in full), replay and purge with a dry run, a
// rate, a confirmation and progress, a job lookup by id, one user's
// subscription ledger ([WithLedger]), and a live overview of outcomes, the
// worker consumer, the streams and the replicas' readiness. herald console serves it; [New] builds it from Go, so any
// process holding a JetStream connection can mount it.
//
// The pages are rendered on the server with html/template; the stylesheet
// and one small script are embedded in the binary, charts are inline SVG
// drawn on the server, and nothing is fetched from elsewhere.
//
// # The same code paths as herald dlq
//
// Every dead-letter read goes through [dlq.Scan], [dlq.Get] and
// [dlq.Counts], every change through [dlq.Replay] and [dlq.Purge], with a
// [dlq.Filter] built from the CLI's filters (reason, platform, app,
// template, code, since, until).
//
// # Paging at any size
//
// A page of dead letters never reads the stream from its start. The list
// is newest first: a page is a window of stream sequences just below a
// cursor, read forward through an ordered consumer narrowed by the
// filter's subjects (notify.dead.<platform>.<reason>). How many letters a
// window holds is asked of the server before it is read: an ephemeral
// consumer created at a sequence or a time reports the matching messages
// pending from there, so a window is sized to hold about one page. A filter
// on app, template or code (not in the subject) reads further windows
// until a page is full, within a bound; when the bound is reached, the page
// says so and offers to search on. Totals come from the same pending
// counts, and the stream's per-subject counts give totals by platform and
// reason without reading any letter.
//
// # Safe by default
//
//   - It listens on loopback unless told otherwise (config
//     console.http_addr).
//   - Basic authentication compares in constant time; a trusted user
//     header, when configured, is required on every request.
//   - Every state-changing request is a POST checked by net/http's
//     CrossOriginProtection (Sec-Fetch-Site, else Origin against Host);
//     safe methods change nothing.
//   - Read-only mode refuses every change and hides its buttons.
//   - Text from producers and platforms is escaped by html/template
//     everywhere, and control and bidirectional characters are shown as
//     escapes; it is never marked as trusted HTML.
//   - Every answer carries a Content-Security-Policy without inline script,
//     X-Frame-Options DENY and Referrer-Policy no-referrer; request bodies,
//     headers and handling times are bounded.
package console

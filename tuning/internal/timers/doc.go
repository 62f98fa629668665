// Package timers is Linux's TCP timer model (net/ipv4/tcp_timer.c) as the
// kit's bounds use it: when keepalive probes and retransmissions go out,
// how late the timer wheel may fire them, and from those the worst and
// earliest times from a peer vanishing to the error.
//
// Its functions are pure, on a plain Params; it imports the standard
// library only. Package tuning resolves a Config's defaults into Params
// and publishes the results (Config.Bounds and its siblings); why the
// kernel behaves so is in tuning's package doc.
package timers

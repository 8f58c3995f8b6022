package bench

// Result is what one run measured. Counts of deliveries are summed over
// connections; an event delivered to 10,000 connections is 10,000
// deliveries.
type Result struct {
	Label      string `json:"label"`   // "herald" or "baseline"
	Dialect    string `json:"dialect"` // stomp, channels, ess or streams
	URL        string `json:"url"`
	Org        string `json:"org"`
	Conns      int    `json:"conns"`
	Rate       string `json:"rate"` // target: "200/s" or "max"
	Batch      int    `json:"batch"`
	Publishers int    `json:"publishers"`
	// BodyBytesTarget is the MESSAGE body size (the event as delivered)
	// the events were padded for; BodyBytes and FrameBytes are the
	// averages received (FrameBytes: the STOMP frame, headers and NUL
	// included, without the 2–4 bytes of WebSocket header). For the JSON
	// dialects both are the event's message (for ess, its element of the
	// "events" array); the events are padded as for STOMP.
	BodyBytesTarget int     `json:"bodyBytesTarget"`
	BodyBytes       float64 `json:"bodyBytes"`
	FrameBytes      float64 `json:"frameBytes"`
	WarmupSeconds   float64 `json:"warmupSeconds"`
	DurationSeconds float64 `json:"durationSeconds"`
	ConnectSeconds  float64 `json:"connectSeconds"` // to open and subscribe every connection

	Published       int64   `json:"published"`       // events acknowledged by the ingest, warm-up included
	PublishRequests int64   `json:"publishRequests"` // ingest requests sent
	PublishErrors   int64   `json:"publishErrors"`   // requests not answered 200
	PublishError    string  `json:"publishError,omitempty"`
	PublishSeconds  float64 `json:"publishSeconds"`
	PublishRate     float64 `json:"publishRate"` // acknowledged events per second, warm-up included

	// Deliveries are the MESSAGEs of events published in the measured
	// window, received by all connections; DeliveriesPerSec divides them by
	// the time from the window's start to the last of them.
	Deliveries       int64        `json:"deliveries"`
	DeliveriesPerSec float64      `json:"deliveriesPerSec"`
	Latency          LatencyStats `json:"latencyMs"`

	Expected      int64   `json:"expected"`      // Published × Conns
	Received      int64   `json:"received"`      // this run's MESSAGEs received, warm-up included
	Lost          int64   `json:"lost"`          // expected per connection minus received, summed where short
	Extra         int64   `json:"extra"`         // received beyond expected (events of failed requests that were stored)
	ConnsWithLoss int     `json:"connsWithLoss"` // connections that received fewer than expected
	Duplicates    int64   `json:"duplicates"`    // a message-id equal to the previous one on the connection
	OutOfOrder    int64   `json:"outOfOrder"`    // a message-id lower than the previous one
	Foreign       int64   `json:"foreign"`       // MESSAGEs of other publishers, ignored
	DrainSeconds  float64 `json:"drainSeconds"`  // waiting for deliveries after publishing
	// DrainEnd says why the wait ended: "complete" (everything arrived),
	// "idle" (nothing arrived for --drain-timeout), "time limit" (2 minutes,
	// deliveries still arriving: the server was behind, and what is counted
	// lost may only be late), "no connection left".
	DrainEnd    string `json:"drainEnd"`
	BrokenConns int64  `json:"brokenConns"` // connections that failed during the run
	ConnError   string `json:"connError,omitempty"`

	Slow                       *SlowStats   `json:"slow,omitempty"`   // with --slow
	Server                     *ServerStats `json:"server,omitempty"` // with a server pid
	ClientCPUSeconds           float64      `json:"clientCpuSeconds"` // this process, over the measured window and drain
	ClientCPUSecondsPerMillion float64      `json:"clientCpuSecondsPerMillion"`
}

// LatencyStats are end-to-end latencies in milliseconds, from the publish
// call (the time stamped in the event just before its HTTP request) to the
// client's receipt of the MESSAGE, over the measured deliveries. Values are
// bucket upper bounds, within 1.6%; Max is exact.
type LatencyStats struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// SlowStats are the throttled connections' figures. Everything above
// (deliveries, latency, loss) is about the other connections; duplicates
// and disorder count everyone.
type SlowStats struct {
	Conns        int          `json:"conns"`
	RateBytes    int          `json:"rateBytesPerSec"` // each
	Received     int64        `json:"received"`        // MESSAGEs of this run
	Behind       int64        `json:"behind"`          // still to come when the run ended: the server holds them in its log
	Latency      LatencyStats `json:"latencyMs"`
	BrokenConns  int64        `json:"brokenConns"`
	ReceivedRate float64      `json:"receivedPerSec"` // per slow connection
}

// ServerStats are the server's figures from /proc.
type ServerStats struct {
	PID             int     `json:"pid"`
	RSSBeforeBytes  int64   `json:"rssBeforeBytes"`  // VmRSS before the first dial
	RSSAfterBytes   int64   `json:"rssAfterBytes"`   // VmRSS with every connection subscribed and idle
	RSSPerConnBytes float64 `json:"rssPerConnBytes"` // (after − before) / conns
	RSSEndBytes     int64   `json:"rssEndBytes"`     // VmRSS when publishing ended
	// CPUSeconds is user+system time over the measured window and drain;
	// CPUSecondsPerMillion divides it by the measured deliveries.
	CPUSeconds           float64 `json:"cpuSeconds"`
	CPUSecondsPerMillion float64 `json:"cpuSecondsPerMillion"`
}

// OK reports whether the run delivered everything, once, in order.
func (r *Result) OK() bool {
	return r.Lost == 0 && r.Duplicates == 0 && r.OutOfOrder == 0 && r.BrokenConns == 0 && r.Published > 0
}

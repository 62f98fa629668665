package census

import (
	"encoding/json"
	"net"
	"net/netip"
	"time"

	"github.com/ghostsock/ghostsock/tuning"
)

// connJSON is a Conn as JSON has it: its Snapshot as snapshotJSON.
type connJSON struct {
	Local, Remote netip.AddrPort
	Listener      *netip.AddrPort `json:",omitempty"`
	PID           int             `json:",omitempty"`
	Process       string          `json:",omitempty"`
	Snapshot      snapshotJSON
	Verdict       tuning.Verdict
	EndsIn        Duration `json:"EndsInMs"`
	SlowPath      bool
	Timer         string
	Settings      string
}

// snapshotJSON is tuning.Snapshot with its durations in milliseconds.
type snapshotJSON struct {
	State                                       tuning.TCPState
	RTT                                         Duration `json:"RTTMs"`
	RTTVar                                      Duration `json:"RTTVarMs"`
	RTO                                         Duration `json:"RTOMs"`
	UnackedSegments, UnackedBytes, NotSentBytes uint32
	Retransmits, Probes, Backoff                uint8
	SinceDataSent                               Duration `json:"SinceDataSentMs"`
	SinceDataReceived                           Duration `json:"SinceDataReceivedMs"`
	SinceACK                                    Duration `json:"SinceACKMs"`
	PeerWindow                                  uint32
	Options                                     configJSON
	Guarded, OptionsKnown                       bool
}

// configJSON is what a census knows of a socket's tuning.Config: its
// socket options, StallTimeout and PathRTO (0 in a census, which cannot
// know them), durations in milliseconds. Config's
// other fields (NoGuard, Observer and the like) are choices of the code
// that opens a connection, not state of the socket: a census never has
// them, and leaves them out.
type configJSON struct {
	UserTimeout  Duration `json:"UserTimeoutMs"`
	KeepAlive    keepAliveJSON
	RTOMax       Duration `json:"RTOMaxMs"`
	StallTimeout Duration `json:"StallTimeoutMs"`
	PathRTO      Duration `json:"PathRTOMs"`
}

// keepAliveJSON is net.KeepAliveConfig with Idle and Interval in
// milliseconds.
type keepAliveJSON struct {
	Enable   bool
	Idle     Duration `json:"IdleMs"`
	Interval Duration `json:"IntervalMs"`
	Count    int
}

// MarshalJSON writes conn with every duration in milliseconds, its
// Snapshot's included.
func (conn Conn) MarshalJSON() ([]byte, error) {
	s, o := conn.Snapshot, conn.Snapshot.Options
	return json.Marshal(connJSON{
		Local: conn.Local, Remote: conn.Remote, Listener: conn.Listener, PID: conn.PID, Process: conn.Process,
		Snapshot: snapshotJSON{
			State: s.State, RTT: Duration(s.RTT), RTTVar: Duration(s.RTTVar), RTO: Duration(s.RTO),
			UnackedSegments: s.UnackedSegments, UnackedBytes: s.UnackedBytes, NotSentBytes: s.NotSentBytes,
			Retransmits: s.Retransmits, Probes: s.Probes, Backoff: s.Backoff,
			SinceDataSent: Duration(s.SinceDataSent), SinceDataReceived: Duration(s.SinceDataReceived), SinceACK: Duration(s.SinceACK),
			PeerWindow: s.PeerWindow,
			Options: configJSON{
				UserTimeout: Duration(o.UserTimeout),
				KeepAlive: keepAliveJSON{Enable: o.KeepAlive.Enable, Idle: Duration(o.KeepAlive.Idle),
					Interval: Duration(o.KeepAlive.Interval), Count: o.KeepAlive.Count},
				RTOMax: Duration(o.RTOMax), StallTimeout: Duration(o.StallTimeout), PathRTO: Duration(o.PathRTO),
			},
			Guarded: s.Guarded, OptionsKnown: s.OptionsKnown,
		},
		Verdict: conn.Verdict, EndsIn: conn.EndsIn, SlowPath: conn.SlowPath, Timer: conn.Timer, Settings: conn.Settings,
	})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (conn *Conn) UnmarshalJSON(b []byte) error {
	var v connJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s, o := v.Snapshot, v.Snapshot.Options
	*conn = Conn{
		Local: v.Local, Remote: v.Remote, Listener: v.Listener, PID: v.PID, Process: v.Process,
		Snapshot: tuning.Snapshot{
			State: s.State, RTT: time.Duration(s.RTT), RTTVar: time.Duration(s.RTTVar), RTO: time.Duration(s.RTO),
			UnackedSegments: s.UnackedSegments, UnackedBytes: s.UnackedBytes, NotSentBytes: s.NotSentBytes,
			Retransmits: s.Retransmits, Probes: s.Probes, Backoff: s.Backoff,
			SinceDataSent: time.Duration(s.SinceDataSent), SinceDataReceived: time.Duration(s.SinceDataReceived),
			SinceACK: time.Duration(s.SinceACK), PeerWindow: s.PeerWindow,
			Options: tuning.Config{
				UserTimeout: time.Duration(o.UserTimeout),
				KeepAlive: net.KeepAliveConfig{Enable: o.KeepAlive.Enable, Idle: time.Duration(o.KeepAlive.Idle),
					Interval: time.Duration(o.KeepAlive.Interval), Count: o.KeepAlive.Count},
				RTOMax: time.Duration(o.RTOMax), StallTimeout: time.Duration(o.StallTimeout), PathRTO: time.Duration(o.PathRTO),
			},
			Guarded: s.Guarded, OptionsKnown: s.OptionsKnown,
		},
		Verdict: v.Verdict, EndsIn: v.EndsIn, SlowPath: v.SlowPath, Timer: v.Timer, Settings: v.Settings,
	}
	return nil
}

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
	Holders       []Holder        `json:",omitempty"`
	Snapshot      snapshotJSON
	Verdict       tuning.Verdict
	// Unanswered and Tries are the Snapshot's, for -reap's readers
	// (written, not read back: they follow from the Snapshot).
	Unanswered Duration `json:"UnansweredMs"`
	Tries      int
	EndsIn     Duration `json:"EndsInMs"`
	SlowPath   bool
	Timer      string
	Settings   string
	Socket
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
// socket options, StallTimeout, PathRTO and OutageGrace (0 in a census,
// which cannot know them), durations in milliseconds. Config's
// other fields (NoGuard, Observer and the like) are choices of the code
// that opens a connection, not state of the socket: a census never has
// them, and leaves them out.
type configJSON struct {
	UserTimeout  Duration `json:"UserTimeoutMs"`
	KeepAlive    keepAliveJSON
	RTOMax       Duration `json:"RTOMaxMs"`
	StallTimeout Duration `json:"StallTimeoutMs"`
	PathRTO      Duration `json:"PathRTOMs"`
	OutageGrace  Duration `json:"OutageGraceMs"`
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
	s := conn.Snapshot
	return json.Marshal(connJSON{
		Local: conn.Local, Remote: conn.Remote, Listener: conn.Listener, PID: conn.PID, Process: conn.Process, Holders: conn.Holders,
		Unanswered: Duration(s.Unanswered()), Tries: s.Tries(),
		Snapshot: snapshotJSON{
			State: s.State, RTT: Duration(s.RTT), RTTVar: Duration(s.RTTVar), RTO: Duration(s.RTO),
			UnackedSegments: s.UnackedSegments, UnackedBytes: s.UnackedBytes, NotSentBytes: s.NotSentBytes,
			Retransmits: s.Retransmits, Probes: s.Probes, Backoff: s.Backoff,
			SinceDataSent: Duration(s.SinceDataSent), SinceDataReceived: Duration(s.SinceDataReceived), SinceACK: Duration(s.SinceACK),
			PeerWindow: s.PeerWindow,
			Options:    OptionsJSON(s.Options),
			Guarded:    s.Guarded, OptionsKnown: s.OptionsKnown,
		},
		Verdict: conn.Verdict, EndsIn: conn.EndsIn, SlowPath: conn.SlowPath, Timer: conn.Timer, Settings: conn.Settings,
		Socket: conn.Socket,
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
		Local: v.Local, Remote: v.Remote, Listener: v.Listener, PID: v.PID, Process: v.Process, Holders: v.Holders,
		Snapshot: tuning.Snapshot{
			State: s.State, RTT: time.Duration(s.RTT), RTTVar: time.Duration(s.RTTVar), RTO: time.Duration(s.RTO),
			UnackedSegments: s.UnackedSegments, UnackedBytes: s.UnackedBytes, NotSentBytes: s.NotSentBytes,
			Retransmits: s.Retransmits, Probes: s.Probes, Backoff: s.Backoff,
			SinceDataSent: time.Duration(s.SinceDataSent), SinceDataReceived: time.Duration(s.SinceDataReceived),
			SinceACK: time.Duration(s.SinceACK), PeerWindow: s.PeerWindow,
			Options: o.Config(),
			Guarded: s.Guarded, OptionsKnown: s.OptionsKnown,
		},
		Verdict: v.Verdict, EndsIn: v.EndsIn, SlowPath: v.SlowPath, Timer: v.Timer, Settings: v.Settings,
		Socket: v.Socket,
	}
	return nil
}

// ConfigJSON is the socket options of c as a census writes them, every
// duration in milliseconds (fields ending in Ms): what ghostscan's
// -harden record keeps.
type ConfigJSON = configJSON

// OptionsJSON is c's socket options as JSON has them.
func OptionsJSON(c tuning.Config) ConfigJSON {
	return configJSON{
		UserTimeout: Duration(c.UserTimeout),
		KeepAlive: keepAliveJSON{Enable: c.KeepAlive.Enable, Idle: Duration(c.KeepAlive.Idle),
			Interval: Duration(c.KeepAlive.Interval), Count: c.KeepAlive.Count},
		RTOMax: Duration(c.RTOMax), StallTimeout: Duration(c.StallTimeout), PathRTO: Duration(c.PathRTO),
		OutageGrace: Duration(c.OutageGrace),
	}
}

// Config is the tuning.Config j describes.
func (j ConfigJSON) Config() tuning.Config {
	return tuning.Config{
		UserTimeout: time.Duration(j.UserTimeout),
		KeepAlive: net.KeepAliveConfig{Enable: j.KeepAlive.Enable, Idle: time.Duration(j.KeepAlive.Idle),
			Interval: time.Duration(j.KeepAlive.Interval), Count: j.KeepAlive.Count},
		RTOMax: time.Duration(j.RTOMax), StallTimeout: time.Duration(j.StallTimeout), PathRTO: time.Duration(j.PathRTO),
		OutageGrace: time.Duration(j.OutageGrace),
	}
}

// listenerJSON is a Listener as JSON has it.
type listenerJSON struct {
	Addr    netip.AddrPort
	PID     int    `json:",omitempty"`
	Process string `json:",omitempty"`
	Socket
	Options      configJSON
	OptionsKnown bool
}

// MarshalJSON writes ln with its Options in milliseconds.
func (ln Listener) MarshalJSON() ([]byte, error) {
	return json.Marshal(listenerJSON{Addr: ln.Addr, PID: ln.PID, Process: ln.Process, Socket: ln.Socket,
		Options: OptionsJSON(ln.Options), OptionsKnown: ln.OptionsKnown})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (ln *Listener) UnmarshalJSON(b []byte) error {
	var v listenerJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*ln = Listener{Addr: v.Addr, PID: v.PID, Process: v.Process, Socket: v.Socket,
		Options: v.Options.Config(), OptionsKnown: v.OptionsKnown}
	return nil
}

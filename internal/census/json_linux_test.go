package census

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ghostsock/ghostsock/tuning"
)

// Every duration is milliseconds in JSON, fractions included, Never -1;
// and reads back as the duration it was.
func TestDurationJSON(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		json string
	}{
		{0, "0"},
		{1500 * time.Millisecond, "1500"},
		{62 * time.Microsecond, "0.062"},
		{time.Nanosecond, "0.000001"},
		{11523871 * time.Nanosecond, "11.523871"},
		{2 * time.Hour, "7200000"},
		{tuning.MaxUserTimeout, "2147483647"},
		{tuning.Never, "-1"},
	} {
		b, err := json.Marshal(Duration(tc.d))
		require.NoError(t, err)
		assert.Equal(t, tc.json, string(b), "%v", tc.d)
		var back Duration
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, tc.d, time.Duration(back), "%s ms", b)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200000 { // any nanosecond count, exactly
		d := Duration(r.Int64N(math.MaxInt64))
		if i%2 == 1 {
			d = Duration(r.Int64N(int64(400 * 24 * time.Hour)))
		}
		b, err := json.Marshal(d)
		require.NoError(t, err)
		var back Duration
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, d, back, "%s ms", b)
	}
	for _, tc := range []struct {
		json string
		d    time.Duration
	}{ // other numbers, as another program may write them
		{"1.5e3", 1500 * time.Millisecond},
		{"0.0625", 62500 * time.Nanosecond},
		{"0.0000004", 0},
		{"-1.0", tuning.Never},
		{"9223372036854.775806", time.Duration(math.MaxInt64 - 1)}, // Never less 1 ns
	} {
		var d Duration
		require.NoError(t, json.Unmarshal([]byte(tc.json), &d), tc.json)
		assert.Equal(t, tc.d, time.Duration(d), tc.json)
	}

	back := Duration(time.Second)
	require.NoError(t, json.Unmarshal([]byte("null"), &back))
	assert.Equal(t, Duration(time.Second), back, "null leaves it")
	assert.Error(t, json.Unmarshal([]byte(`"1s"`), &back))
	assert.Error(t, json.Unmarshal([]byte("1e300"), &back))
	assert.Error(t, json.Unmarshal([]byte("9223372036854.775808"), &back))
}

// fixture is a census with every field set, each duration a distinct,
// known value.
func fixture() *Census {
	ln := netip.MustParseAddrPort("127.0.0.1:8080")
	return &Census{
		Took:    Duration(11523871 * time.Nanosecond),
		Sockets: 4,
		Groups: []*Group{{Name: "listen 127.0.0.1:8080", Process: "srv[42]", Established: 2, Unwatched: 1, Retransmitting: 1,
			SilentFor: Duration(12 * time.Second), Stalled: 0, Suspected: 1, NeverEnds: 1, MaxEndsIn: Duration(95 * time.Second), SettingsRead: 2, SlowPath: 5}},
		Connections: []*Conn{{
			Local: ln, Remote: netip.MustParseAddrPort("127.0.0.1:50000"), Listener: &ln, PID: 42, Process: "srv",
			Snapshot: tuning.Snapshot{
				State: tuning.TCPEstablished, RTT: 62 * time.Microsecond, RTTVar: 35 * time.Microsecond, RTO: 204 * time.Millisecond,
				UnackedSegments: 3, UnackedBytes: 3000, NotSentBytes: 500, Retransmits: 4, Probes: 0, Backoff: 4,
				SinceDataSent: 1001 * time.Millisecond, SinceDataReceived: 12002 * time.Millisecond, SinceACK: 12003 * time.Millisecond,
				PeerWindow: 65536,
				Options: tuning.Config{
					UserTimeout:  30 * time.Second,
					KeepAlive:    net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
					RTOMax:       2 * time.Second,
					StallTimeout: 60 * time.Second,
				},
				Guarded: true, OptionsKnown: true,
			},
			Verdict: tuning.Suspected, EndsIn: Duration(95 * time.Second), SlowPath: true, Timer: "on", Settings: "read",
		}, {
			Local: ln, Remote: netip.MustParseAddrPort("127.0.0.1:50001"), Listener: &ln,
			Snapshot: tuning.Snapshot{State: tuning.TCPEstablished},
			Verdict:  tuning.Unwatched, EndsIn: Duration(tuning.Never), Timer: "off", Settings: "assumed: kernel defaults",
		}},
	}
}

// A census's JSON holds every duration in milliseconds, in fields named
// ...Ms, and reads back as the census it was.
func TestCensusJSON(t *testing.T) {
	c := fixture()
	b, err := json.Marshal(c)
	require.NoError(t, err)

	var raw map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	ms := map[string]any{} // every ...Ms field, by path
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			if len(v) > 0 {
				walk(path+"[0]", v[0])
			}
		default:
			if strings.HasSuffix(path, "Ms") {
				ms[path] = v
			}
		}
	}
	walk("", raw)
	assert.Equal(t, map[string]any{
		".TookMs":                                               11.523871,
		".Groups[0].SilentForMs":                                12000.0,
		".Groups[0].CloseWaitForMs":                             0.0,
		".Groups[0].MaxEndsInMs":                                95000.0,
		".Connections[0].EndsInMs":                              95000.0,
		".Connections[0].Snapshot.RTTMs":                        0.062,
		".Connections[0].Snapshot.RTTVarMs":                     0.035,
		".Connections[0].Snapshot.RTOMs":                        204.0,
		".Connections[0].Snapshot.SinceDataSentMs":              1001.0,
		".Connections[0].Snapshot.SinceDataReceivedMs":          12002.0,
		".Connections[0].Snapshot.SinceACKMs":                   12003.0,
		".Connections[0].Snapshot.Options.UserTimeoutMs":        30000.0,
		".Connections[0].Snapshot.Options.KeepAlive.IdleMs":     15000.0,
		".Connections[0].Snapshot.Options.KeepAlive.IntervalMs": 5000.0,
		".Connections[0].Snapshot.Options.RTOMaxMs":             2000.0,
		".Connections[0].Snapshot.Options.StallTimeoutMs":       60000.0,
		".Connections[0].Snapshot.Options.PathRTOMs":            0.0,
		".Connections[0].Snapshot.Options.OutageGraceMs":        0.0,
		".Connections[0].UnansweredMs":                          1001.0, // 1001 since a send, at least: longer than the four timeouts (151.25 ms) and perhaps before the last
	}, ms, "%s", b)
	never := raw["Connections"].([]any)[1].(map[string]any)
	assert.Equal(t, -1.0, never["EndsInMs"], "never is -1")

	// No number but the ...Ms fields' is a duration: the rest are the
	// fixture's counts, bytes and windows.
	var others []float64
	var nums func(path string, v any)
	nums = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				nums(k, e)
			}
		case []any:
			for _, e := range v {
				nums(path, e)
			}
		case float64:
			if !strings.HasSuffix(path, "Ms") {
				others = append(others, v)
			}
		}
	}
	nums("", raw)
	sort.Float64s(others)
	assert.Equal(t, []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 4, 4, 5, 42, 500, 3000, 65536}, others)

	// A duration added to tuning.Snapshot or tuning.Config must join the
	// view: one ...Ms field in Snapshot per time.Duration in it.
	snapshotMs := 0
	for p := range ms {
		if strings.HasPrefix(p, ".Connections[0].Snapshot.") || p == ".Connections[0].UnansweredMs" {
			snapshotMs++
		}
	}
	assert.Equal(t, durations(reflect.TypeFor[tuning.Snapshot]())+1, snapshotMs, "time.Durations in tuning.Snapshot, and Unanswered")

	var back Census
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, c, &back)
}

// durations counts the time.Duration fields of struct type t, nested
// structs included.
func durations(t reflect.Type) int {
	n := 0
	for f := range t.Fields() {
		switch {
		case f.Type == reflect.TypeFor[time.Duration]():
			n++
		case f.Type.Kind() == reflect.Struct:
			n += durations(f.Type)
		}
	}
	return n
}
